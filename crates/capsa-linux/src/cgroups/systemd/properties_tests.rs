use serde_json::json;

use super::*;

fn props(r: serde_json::Value, v2: bool, version: u32) -> Vec<(String, Value)> {
    let r: LinuxResources = serde_json::from_value(r).unwrap();
    resource_properties(&r, v2, version).unwrap()
}

fn u64s(list: &[(&str, u64)]) -> Vec<(String, Value)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), Value::U64(*v)))
        .collect()
}

#[test]
fn v2_names_and_converted_values() {
    let got = props(
        json!({
            "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "blockIO": {"weight": 500},
            "pids": {"limit": 64}
        }),
        true,
        252,
    );
    assert_eq!(
        got,
        u64s(&[
            ("MemoryMax", 104_857_600),
            ("MemoryLow", 52_428_800),
            ("MemorySwapMax", 104_857_600), // swap is memory+swap in the spec
            ("CPUWeight", 39),
            ("CPUQuotaPeriodUSec", 100_000),
            ("CPUQuotaPerSecUSec", 500_000),
            ("IOWeight", 4950),
            ("TasksMax", 64),
        ])
    );
}

#[test]
fn v1_names_on_v1_and_hybrid_hosts() {
    let got = props(
        json!({
            "memory": {"limit": 1048576, "reservation": 1, "swap": 2097152},
            "cpu": {"shares": 512},
            "blockIO": {"weight": 300},
            "pids": {"limit": 10}
        }),
        false,
        252,
    );
    assert_eq!(
        got,
        u64s(&[
            ("MemoryLimit", 1_048_576),
            ("CPUShares", 512),
            ("BlockIOWeight", 300),
            ("TasksMax", 10),
        ])
    );
}

#[test]
fn unlimited_values_are_infinity() {
    let got = props(
        json!({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}),
        true,
        252,
    );
    assert_eq!(
        got,
        u64s(&[
            ("MemoryMax", u64::MAX),
            ("MemorySwapMax", u64::MAX),
            ("CPUQuotaPerSecUSec", u64::MAX),
            ("TasksMax", u64::MAX),
        ])
    );
}

#[test]
fn quota_is_rounded_up_to_whole_percents() {
    // 33333/100000 of a CPU is 333330 us per second: 340000 for systemd.
    assert_eq!(
        cpu_quota(Some(33333), Some(100_000), 252),
        u64s(&[
            ("CPUQuotaPeriodUSec", 100_000),
            ("CPUQuotaPerSecUSec", 340_000)
        ])
    );
    // A quota alone assumes the default period; old systemd gets no period.
    assert_eq!(
        cpu_quota(Some(20000), None, 241),
        u64s(&[("CPUQuotaPerSecUSec", 200_000)])
    );
    assert_eq!(
        cpu_quota(None, Some(50_000), 241),
        u64s(&[("CPUQuotaPerSecUSec", u64::MAX)])
    );
    assert!(cpu_quota(None, None, 252).is_empty());
}

#[test]
fn cpusets_are_byte_masks_from_systemd_244() {
    let r = json!({"cpu": {"cpus": "0-3,5", "mems": "0,9"}});
    assert_eq!(
        props(r.clone(), true, 244),
        vec![
            ("AllowedCPUs".to_string(), byte_array(vec![0x2f])),
            (
                "AllowedMemoryNodes".to_string(),
                byte_array(vec![0x01, 0x02])
            ),
        ]
    );
    assert!(props(r, true, 243).is_empty());
    assert_eq!(range_to_bits("8").unwrap(), [0, 1]);
    assert_eq!(range_to_bits(" 0 - 1 , 15").unwrap(), [3, 0x80]);
    for bad in ["", "a", "3-1", "1-", "-1"] {
        assert!(range_to_bits(bad).is_err(), "{bad}");
    }
}

#[test]
fn cpu_idle_is_cpu_weight_zero_from_systemd_252() {
    let r = json!({"cpu": {"idle": 1, "shares": 1024}});
    assert_eq!(props(r.clone(), true, 252), u64s(&[("CPUWeight", 0)]));
    assert_eq!(props(r, true, 251), u64s(&[("CPUWeight", 39)]));
}

#[test]
fn unified_keys_with_a_property() {
    let got = props(
        json!({"unified": {"memory.high": "1000", "pids.max": "max", "io.max": "8:0 rbps=1", "cpu.weight": "nope"}}),
        true,
        252,
    );
    assert_eq!(got, u64s(&[("MemoryHigh", 1000), ("TasksMax", u64::MAX)]));
    // v1 hosts refuse `unified` in the files; no property either.
    assert!(props(json!({"unified": {"memory.high": "1"}}), false, 252).is_empty());
}

#[test]
fn a_v2_swap_without_a_limit_is_refused_naming_the_field() {
    let r: LinuxResources = serde_json::from_value(json!({"memory": {"swap": 100}})).unwrap();
    let e = resource_properties(&r, true, 252).unwrap_err();
    assert!(
        e.to_string().starts_with("linux.resources.memory.swap:"),
        "{e}"
    );
}
