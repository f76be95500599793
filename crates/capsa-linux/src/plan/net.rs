//! `linux.netDevices` in the plan: which host interfaces the parent moves
//! into the container's network namespace, under which names, in which
//! order (by host name, so a failure is reproducible).

use capsa_spec::ValidSpec;

/// One interface to move at step 6 of the create protocol (`protocol.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDeviceMove {
    /// Its name on the host, the key of `linux.netDevices`.
    pub host_name: String,
    /// Its name in the container (maybe a `%d` template).
    pub name: String,
}

impl NetDeviceMove {
    /// The JSON path of its entry, for errors.
    pub fn json_path(&self) -> String {
        format!("linux.netDevices.{}", self.host_name)
    }
}

pub(super) fn net_devices(spec: &ValidSpec) -> Vec<NetDeviceMove> {
    spec.linux
        .net_devices
        .iter()
        .map(|(host, dev)| NetDeviceMove {
            host_name: host.clone(),
            name: dev.name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_are_planned_by_host_name_with_their_container_names() {
        let json = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {
                "namespaces": [{"type": "network"}],
                "netDevices": {"net9h": {"name": "eth%d"}, "net1h": {"name": "eth1"}, "dummy3": {}}
            }
        });
        let spec = capsa_spec::parse(json.to_string().as_bytes(), "/b".as_ref()).unwrap();
        let got: Vec<(String, String, String)> = net_devices(&spec)
            .into_iter()
            .map(|m| (m.json_path(), m.host_name, m.name))
            .collect();
        let want = [
            ("linux.netDevices.dummy3", "dummy3", "dummy3"),
            ("linux.netDevices.net1h", "net1h", "eth1"),
            ("linux.netDevices.net9h", "net9h", "eth%d"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(got, want);
    }
}
