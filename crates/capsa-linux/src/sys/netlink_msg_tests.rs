use super::*;

fn u16s(v: u16) -> [u8; 2] {
    v.to_ne_bytes()
}

fn u32s(v: u32) -> [u8; 4] {
    v.to_ne_bytes()
}

/// The bytes of a header, written out field by field.
fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
    [
        &u32s(len)[..],
        &u16s(kind),
        &u16s(flags),
        &u32s(seq),
        &u32s(0),
    ]
    .concat()
}

#[test]
fn move_link_is_one_newlink_with_the_netns_fd_and_the_new_name() {
    let got = move_link(7, 42, "eth1", 9);
    let want = [
        // 16 header + 16 ifinfomsg + 8 IFLA_NET_NS_FD + 12 IFLA_IFNAME("eth1\0" padded)
        header(52, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 7),
        vec![0, 0, 0, 0],
        42i32.to_ne_bytes().to_vec(),
        vec![0; 8],
        [&u16s(8)[..], &u16s(IFLA_NET_NS_FD), &u32s(9)].concat(),
        [&u16s(9)[..], &u16s(IFLA_IFNAME), b"eth1\0", &[0, 0, 0]].concat(),
    ]
    .concat();
    assert_eq!(got, want);
}

#[test]
fn set_link_up_changes_only_iff_up() {
    let got = set_link_up(3, 5);
    assert_eq!(got.len(), 32);
    assert_eq!(
        &got[..16],
        &header(32, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 3)[..]
    );
    assert_eq!(&got[20..24], &5i32.to_ne_bytes());
    assert_eq!(&got[24..28], &u32s(IFF_UP), "ifi_flags");
    assert_eq!(&got[28..32], &u32s(IFF_UP), "ifi_change");
}

#[test]
fn dumps_and_lookups_have_the_right_flags() {
    let links = get_links(1);
    assert_eq!(&links[4..6], &u16s(RTM_GETLINK));
    assert_eq!(&links[6..8], &u16s(NLM_F_REQUEST | NLM_F_DUMP));
    let addrs = get_addrs(2);
    assert_eq!(addrs.len(), 24);
    assert_eq!(&addrs[4..6], &u16s(RTM_GETADDR));
    let one = get_link_by_name(3, "net0");
    assert_eq!(&one[6..8], &u16s(NLM_F_REQUEST | NLM_F_ACK));
    assert_eq!(
        &one[32..],
        &[&u16s(9)[..], &u16s(IFLA_IFNAME), b"net0\0", &[0, 0, 0]].concat()[..]
    );
}

fn v4(flags: u32) -> IfAddr {
    IfAddr {
        family: 2,
        prefix_len: 30,
        scope: 0,
        flags,
        local: Some(vec![10, 199, 3, 2]),
        address: Some(vec![10, 199, 3, 2]),
        broadcast: Some(vec![10, 199, 3, 3]),
    }
}

#[test]
fn add_addr_keeps_only_the_settable_flags_and_round_trips() {
    // permanent (kernel state) + noprefixroute (settable)
    let a = v4(IFA_F_PERMANENT | 0x200);
    let msg = add_addr(4, 17, &a);
    assert_eq!(&msg[4..6], &u16s(RTM_NEWADDR));
    assert_eq!(
        &msg[6..8],
        &u16s(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    );
    assert_eq!(
        &msg[16..20],
        &[2, 30, 0, 0],
        "family, prefix, flags(8 bits), scope"
    );
    let replies = split(&msg).unwrap();
    assert_eq!(replies.len(), 1);
    let (index, back) = parse_addr(replies[0].payload).unwrap();
    assert_eq!(index, 17);
    assert_eq!(back, IfAddr { flags: 0x200, ..a });
}

#[test]
fn only_permanent_global_addresses_move() {
    assert!(v4(IFA_F_PERMANENT).is_permanent_global());
    assert!(!v4(0).is_permanent_global(), "a dynamic address");
    let link_local = IfAddr {
        scope: 253,
        ..v4(IFA_F_PERMANENT)
    };
    assert!(!link_local.is_permanent_global());
}

#[test]
fn a_link_reply_gives_index_and_name_and_skips_other_attributes() {
    let payload = [
        vec![0, 0, 1, 0],
        12i32.to_ne_bytes().to_vec(),
        vec![0; 8],
        // IFLA_MTU (4), then a nested attribute with the NLA_F_NESTED bit
        [&u16s(8)[..], &u16s(4), &u32s(1500)].concat(),
        [&u16s(4)[..], &u16s(0x8000 | 18)].concat(),
        [&u16s(10)[..], &u16s(IFLA_IFNAME), b"netc1\0", &[0, 0]].concat(),
    ]
    .concat();
    let msg = [
        header(16 + payload.len() as u32, RTM_NEWLINK, 2, 9),
        payload,
    ]
    .concat();
    let done = header(20, NLMSG_DONE, 2, 9);
    let buf = [msg, done, vec![0; 4]].concat();
    let replies = split(&buf).unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!((replies[0].kind, replies[0].seq), (RTM_NEWLINK, 9));
    assert_eq!(
        parse_link(replies[0].payload).unwrap(),
        (12, "netc1".into())
    );
    assert_eq!(replies[1].kind, NLMSG_DONE);
}

#[test]
fn errors_and_truncation() {
    let mut err = header(36, NLMSG_ERROR, 0, 5);
    err.extend_from_slice(&(-17i32).to_ne_bytes());
    err.extend_from_slice(&header(16, RTM_NEWLINK, 5, 5));
    let replies = split(&err).unwrap();
    assert_eq!(error_code(replies[0].payload), Ok(17), "EEXIST");
    assert!(error_code(&[0, 0]).is_err());
    let mut bad = header(64, RTM_NEWLINK, 0, 1);
    bad.extend_from_slice(&[0; 8]);
    assert!(split(&bad).is_err(), "length past the buffer");
    let short_attr = [vec![0; 16], [&u16s(40)[..], &u16s(3)].concat()].concat();
    assert!(parse_link(&short_attr).is_err());
}
