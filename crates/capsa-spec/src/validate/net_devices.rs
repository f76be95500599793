//! `linux.netDevices` (runtime-spec 1.2): host network interfaces moved into
//! the container's network namespace, each with its name in there. Only the
//! rules that need no host are checked here; whether the interface exists is
//! the Linux crate's business, at create time.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime as oci;

use crate::error::SpecError;
use crate::types::{Namespace, NamespaceKind, NetDevice};

/// The kernel's limit on an interface name, without its NUL (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

pub(super) fn validate(
    raw: Option<&HashMap<String, oci::LinuxNetDevice>>,
    namespaces: &[Namespace],
) -> Result<BTreeMap<String, NetDevice>, SpecError> {
    let Some(raw) = raw.filter(|m| !m.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    if !namespaces.iter().any(|n| n.kind == NamespaceKind::Network) {
        return Err(SpecError::invalid(
            "linux.netDevices",
            "moving network devices needs a network namespace in linux.namespaces \
             (without one the container shares the host's, and there is nowhere to move them)",
        ));
    }
    // Sorted by host name, so errors and the order of the moves are stable.
    let sorted: BTreeMap<&String, &oci::LinuxNetDevice> = raw.iter().collect();
    let mut out = BTreeMap::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for (host, dev) in sorted {
        let at = format!("linux.netDevices.{host}");
        check_name(host, false).map_err(|why| SpecError::invalid(&at, why))?;
        let name = match dev.name().as_deref() {
            None | Some("") => host.clone(),
            Some(n) => {
                check_name(n, true).map_err(|why| SpecError::invalid(format!("{at}.name"), why))?;
                n.to_string()
            }
        };
        // A `%d` template is numbered by the kernel, so it cannot clash.
        if !name.contains('%') {
            if let Some(other) = taken.insert(name.clone(), host) {
                return Err(SpecError::invalid(
                    format!("{at}.name"),
                    format!("{name:?} is also the container name of linux.netDevices.{other}"),
                ));
            }
        }
        out.insert(host.clone(), NetDevice { name });
    }
    Ok(out)
}

/// The kernel's rules for an interface name (`dev_valid_name`), plus its rule
/// for a name template (`dev_alloc_name`: one `%d`, nothing else after `%`)
/// when `template_ok`.
fn check_name(name: &str, template_ok: bool) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{name:?} is not a valid network interface name: {why}"
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > IFNAME_MAX {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("it is . or ..");
    }
    if name.contains(['/', ':']) || name.chars().any(|c| c.is_ascii_whitespace()) {
        return bad("it contains '/', ':' or whitespace");
    }
    if let Some(at) = name.find('%') {
        if !template_ok {
            return bad("a host interface name has no '%'");
        }
        if !name[at..].starts_with("%d") || name[at + 2..].contains('%') {
            return bad("a name template has one %d and no other '%'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{json, Value};

    use super::check_name;
    use crate::NetDevice;

    fn config(net_devices: Value, namespaces: Value) -> Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": namespaces, "netDevices": net_devices}
        })
    }

    fn parse(v: Value) -> Result<crate::ValidSpec, String> {
        crate::parse(v.to_string().as_bytes(), Path::new("/b")).map_err(|e| e.to_string())
    }

    #[test]
    fn devices_are_kept_with_their_container_names() {
        let s = parse(config(
            json!({"net0h": {"name": "eth1"}, "dummy0": {}, "v2": {"name": ""}}),
            json!([{"type": "network"}]),
        ))
        .unwrap();
        let got: Vec<(&str, &str)> = s
            .linux
            .net_devices
            .iter()
            .map(|(h, NetDevice { name })| (h.as_str(), name.as_str()))
            .collect();
        assert_eq!(got, [("dummy0", "dummy0"), ("net0h", "eth1"), ("v2", "v2")]);
    }

    #[test]
    fn a_joined_network_namespace_will_do() {
        let s = parse(config(
            json!({"net0h": {}}),
            json!([{"type": "network", "path": "/run/netns/x"}]),
        ))
        .unwrap();
        assert_eq!(s.linux.net_devices.len(), 1);
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases = [
            (
                config(json!({"net0h": {}}), json!([{"type": "pid"}])),
                "config.json: linux.netDevices: moving network devices needs a network namespace",
            ),
            (
                config(json!({"a/b": {}}), json!([{"type": "network"}])),
                "config.json: linux.netDevices.a/b: \"a/b\" is not a valid network interface name",
            ),
            (
                config(
                    json!({"net0h": {"name": "much-too-long-name0"}}),
                    json!([{"type": "network"}]),
                ),
                "config.json: linux.netDevices.net0h.name: \"much-too-long-name0\" is not a valid",
            ),
            (
                config(
                    json!({"a": {"name": "eth0"}, "b": {"name": "eth0"}}),
                    json!([{"type": "network"}]),
                ),
                "config.json: linux.netDevices.b.name: \"eth0\" is also the container name of linux.netDevices.a",
            ),
        ];
        for (v, want) in cases {
            let got = parse(v).expect_err("must be refused");
            assert!(got.starts_with(want), "{got}\nwanted: {want}");
        }
    }

    #[test]
    fn templates_may_repeat() {
        let s = parse(config(
            json!({"a": {"name": "eth%d"}, "b": {"name": "eth%d"}}),
            json!([{"type": "network"}]),
        ))
        .unwrap();
        assert_eq!(s.linux.net_devices["b"].name, "eth%d");
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        for ok in ["eth0", "net0c", "a", "x234567890abcde", "ve-th_1.2"] {
            assert_eq!(check_name(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:1",
            "a b",
            "a\tb",
            "x234567890abcdef",
        ] {
            assert!(check_name(bad, true).is_err(), "{bad:?}");
        }
        assert_eq!(check_name("eth%d", true), Ok(()));
        assert!(check_name("eth%d", false).is_err());
        assert!(check_name("eth%s", true).is_err());
        assert!(check_name("e%d%d", true).is_err());
    }
}
