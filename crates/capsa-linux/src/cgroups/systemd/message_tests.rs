//! Byte-exact D-Bus messages. The expected bytes come from GLib's
//! `GDBusMessage.to_blob` (an independent implementation of the wire format),
//! produced once with python3-gi and pasted here as hex:
//! the bodies must match byte for byte, and whole messages GLib wrote must
//! decode to exactly the message meant.

use super::message::{Kind, Message};
use super::wire::Value;
use super::{property_array, DbusError};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// StartTransientUnit("capsa-x.scope", "replace", [Delegate=true, PIDs=[42],
/// MemoryMax=1MiB, AllowedCPUs=[0x2f], Wants=["system.slice"]], []): body.
const START_BODY: &str = "0d00000063617073612d782e73636f7065000000070000007265706c6163650095000000000000000800000044656c656761746500016200010000000000000004000000504944730002617500000000040000002a000000090000004d656d6f72794d6178000174000000000000000000001000000000000b000000416c6c6f776564435055730002617900010000002f000000000000000500000057616e747300026173000000110000000c00000073797374656d2e736c696365000000000000000000000000";

/// Signal JobRemoved(1234, /org/freedesktop/systemd1/job/1234,
/// "capsa-x.scope", "done") from ":1.0", serial 99.
const JOB_REMOVED: &str = "6c04010149000000630000008b00000007017300040000003a312e300000000001016f00190000002f6f72672f667265656465736b746f702f73797374656d64310000000000000002017300200000006f72672e667265656465736b746f702e73797374656d64312e4d616e6167657200000000000000000801670004756f737300000000000000030173000a0000004a6f6252656d6f766564000000000000d2040000220000002f6f72672f667265656465736b746f702f73797374656d64312f6a6f622f3132333400000d00000063617073612d782e73636f706500000004000000646f6e6500";

/// Error org.freedesktop.systemd1.UnitExists replying to serial 5.
const UNIT_EXISTS: &str = "6c03010127000000640000004000000004017300230000006f72672e667265656465736b746f702e73797374656d64312e556e697445786973747300000000000801670001730000050175000500000022000000556e69742063617073612d782e73636f706520616c7265616479206578697374732e00";

fn start_call() -> Message {
    let props = vec![
        ("Delegate".to_string(), Value::Bool(true)),
        (
            "PIDs".to_string(),
            Value::Array {
                elem: "u".into(),
                items: vec![Value::U32(42)],
            },
        ),
        ("MemoryMax".to_string(), Value::U64(1 << 20)),
        (
            "AllowedCPUs".to_string(),
            Value::Array {
                elem: "y".into(),
                items: vec![Value::Byte(0x2f)],
            },
        ),
        (
            "Wants".to_string(),
            Value::Array {
                elem: "s".into(),
                items: vec![Value::str("system.slice")],
            },
        ),
    ];
    Message::call(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "StartTransientUnit",
    )
    .with_body(vec![
        Value::str("capsa-x.scope"),
        Value::str("replace"),
        property_array(props),
        Value::Array {
            elem: "(sa(sv))".into(),
            items: vec![],
        },
    ])
}

#[test]
fn start_transient_unit_body_is_byte_exact() {
    let mut msg = start_call();
    msg.serial = 7;
    assert_eq!(msg.signature(), "ssa(sv)a(sa(sv))");
    let bytes = msg.encode();
    let body_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(hex(START_BODY).len(), body_len);
    assert_eq!(bytes[bytes.len() - body_len..], hex(START_BODY)[..]);
    assert_eq!(&bytes[..4], b"l\x01\x00\x01");
    assert_eq!(bytes[8..12], 7u32.to_le_bytes());
}

#[test]
fn our_messages_decode_back_to_themselves() {
    let mut msg = start_call();
    msg.serial = 3;
    assert_eq!(Message::decode(&msg.encode()).unwrap(), msg);
}

#[test]
fn decodes_a_job_removed_signal_written_by_glib() {
    let msg = Message::decode(&hex(JOB_REMOVED)).unwrap();
    assert_eq!(msg.kind, Kind::Signal);
    assert_eq!(msg.serial, 99);
    assert_eq!(msg.sender.as_deref(), Some(":1.0"));
    assert_eq!(msg.member.as_deref(), Some("JobRemoved"));
    assert_eq!(
        msg.interface.as_deref(),
        Some("org.freedesktop.systemd1.Manager")
    );
    assert_eq!(
        msg.body,
        vec![
            Value::U32(1234),
            Value::ObjectPath("/org/freedesktop/systemd1/job/1234".into()),
            Value::str("capsa-x.scope"),
            Value::str("done"),
        ]
    );
}

#[test]
fn decodes_an_error_reply_written_by_glib() {
    let msg = Message::decode(&hex(UNIT_EXISTS)).unwrap();
    assert_eq!(msg.kind, Kind::Error);
    assert_eq!(msg.reply_serial, Some(5));
    assert_eq!(
        msg.error_name.as_deref(),
        Some("org.freedesktop.systemd1.UnitExists")
    );
    assert_eq!(msg.first_str(), Some("Unit capsa-x.scope already exists."));
}

#[test]
fn the_hello_call_is_byte_exact() {
    // Worked out from the specification: 16 fixed bytes + fields, no body.
    let mut hello = Message::call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "Hello",
    );
    hello.serial = 1;
    let mut want: Vec<u8> = b"l\x01\x00\x01".to_vec();
    want.extend(0u32.to_le_bytes()); // body length
    want.extend(1u32.to_le_bytes()); // serial
    let mut fields: Vec<u8> = Vec::new();
    let mut field = |code: u8, sig: u8, text: &str| {
        while fields.len() % 8 != 0 {
            fields.push(0);
        }
        fields.extend([code, 1, sig, 0]);
        fields.extend((text.len() as u32).to_le_bytes());
        fields.extend(text.as_bytes());
        fields.push(0);
    };
    field(1, b'o', "/org/freedesktop/DBus");
    field(2, b's', "org.freedesktop.DBus");
    field(3, b's', "Hello");
    field(6, b's', "org.freedesktop.DBus");
    want.extend((fields.len() as u32).to_le_bytes());
    want.extend(fields);
    while want.len() % 8 != 0 {
        want.push(0);
    }
    assert_eq!(hello.encode(), want);
}

#[test]
fn truncated_and_big_endian_messages_are_refused() {
    let bytes = hex(JOB_REMOVED);
    let e = Message::decode(&bytes[..bytes.len() - 1]).unwrap_err();
    assert!(matches!(e, DbusError::Protocol(_)), "{e}");
    let mut big = bytes.clone();
    big[0] = b'B';
    let e = Message::decode(&big).unwrap_err();
    assert!(e.to_string().contains("little endian"), "{e}");
}
