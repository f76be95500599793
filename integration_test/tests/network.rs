//! `linux.netDevices` (runtime-spec 1.2): a veth pair made by the test, one end
//! moved into the container with a new name and its address; the host pings it over
//! the pair; deleting the container destroys the veth (its peer with it). Bad inputs
//! fail with one line and leave the host's interface where it was.
//!
//! runc 1.1.5 predates netDevices (it ignores the field), so these tests are
//! capsa-only and say so loudly under `CAPSA_RUNTIME=runc`. Interfaces are named
//! `net<pid><n>[ab]` and use 10.199.<k>.0/30, so parallel tests do not collide.

use std::fs;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use capsa_integration_test::{capsa_only, wait_for_file, wait_until, Bundle, Ctx};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Runs a host command; panics with its output unless it succeeds.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn link_exists(name: &str) -> bool {
    fs::metadata(format!("/sys/class/net/{name}")).is_ok()
}

/// A veth pair on the host: `a` goes into the container, `b` stays. Both
/// ends are deleted when the guard drops, if they still exist.
struct Veth {
    a: String,
    b: String,
    /// The third octet of the pair's 10.199.k.0/30.
    k: usize,
}

impl Veth {
    fn new() -> Veth {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        let (a, b) = (format!("net{pid}{n}a"), format!("net{pid}{n}b"));
        let k = (pid as usize * 7 + n) % 250 + 1;
        run(&[
            "ip", "link", "add", &a, "mtu", "1400", "type", "veth", "peer", "name", &b,
        ]);
        let v = Veth { a, b, k };
        run(&["ip", "addr", "add", &v.ip(2, true), "dev", &v.a]);
        run(&["ip", "addr", "add", &v.ip(1, true), "dev", &v.b]);
        run(&["ip", "link", "set", &v.a, "up"]);
        run(&["ip", "link", "set", &v.b, "up"]);
        v
    }

    fn ip(&self, host: u8, prefix: bool) -> String {
        let ip = format!("10.199.{}.{host}", self.k);
        if prefix {
            format!("{ip}/30")
        } else {
            ip
        }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for end in [&self.a, &self.b] {
            if link_exists(end) {
                let _ = Command::new("ip").args(["link", "del", end]).status();
            }
        }
    }
}

fn bundle_moving(ctx: &Ctx, prefix: &str, devices: serde_json::Value) -> (String, Bundle) {
    let (id, mut b) = ctx.sleeper(prefix);
    b.edit(|c| c["linux"]["netDevices"] = devices);
    (id, b)
}

#[test]
fn a_veth_end_moves_in_renamed_with_its_address_and_the_host_pings_it() {
    if !capsa_only("linux.netDevices (runc 1.1.5 ignores it)") {
        return;
    }
    let ctx = Ctx::new();
    let veth = Veth::new();
    let (id, mut b) = bundle_moving(&ctx, "netdev", json!({ &veth.a: { "name": "ctr0" } }));
    let out = b.with_out_dir();
    b.sh(
        "ip addr show ctr0 > /out/addr; cat /sys/class/net/ctr0/mtu > /out/mtu; \
          cat /sys/class/net/ctr0/operstate > /out/operstate; exec sleep 1000",
    );

    ctx.create_and_start(&b, &id);
    wait_for_file(&out.join("operstate"), WAIT);
    let addr = fs::read_to_string(out.join("addr")).expect("read addr");
    assert!(
        addr.contains(&format!("inet {}", veth.ip(2, true))) && addr.contains("ctr0"),
        "ip addr inside the container:\n{addr}"
    );
    let mtu = fs::read_to_string(out.join("mtu")).expect("read mtu");
    assert_eq!(mtu.trim(), "1400", "the MTU is kept");
    let oper = fs::read_to_string(out.join("operstate")).expect("read operstate");
    assert_eq!(oper.trim(), "up", "the interface is set up inside");
    assert!(!link_exists(&veth.a), "{} is still on the host", veth.a);
    assert!(
        !run(&["ip", "-o", "link"]).contains("ctr0"),
        "ctr0 must exist only in the container"
    );

    // Host → container over the pair (busybox's ping: the host may lack iputils).
    run(&["busybox", "ping", "-c", "1", "-W", "5", &veth.ip(2, false)]);

    ctx.delete_force(&id).assert_silent_success();
    // The container's network namespace is gone, and the veth with it: the
    // kernel destroys virtual interfaces (its host peer too), asynchronously.
    wait_until(&format!("{} to be destroyed", veth.b), WAIT, || {
        !link_exists(&veth.b)
    });
    ctx.assert_nothing_left(&id, &b);
}

/// `create` must fail with one line naming `path`, leave nothing, and leave
/// the host interface `veth.a` on the host, as it was.
fn refused(ctx: &Ctx, veth: &Veth, id: &str, b: &Bundle, path: &str) {
    let line = ctx.create(b, id).assert_error_line();
    assert!(line.contains(path), "the error should name {path}: {line}");
    ctx.assert_nothing_left(id, b);
    assert!(link_exists(&veth.a), "{} left the host", veth.a);
    let addr = run(&["ip", "addr", "show", &veth.a]);
    assert!(
        addr.contains(&veth.ip(2, true)),
        "{} lost its address:\n{addr}",
        veth.a
    );
}

#[test]
fn bad_net_devices_fail_in_one_line_and_change_nothing() {
    if !capsa_only("linux.netDevices errors (runc 1.1.5 ignores the field)") {
        return;
    }
    let ctx = Ctx::new();
    let veth = Veth::new();
    let missing = format!("{}x", veth.b);

    let (id, b) = bundle_moving(&ctx, "netmiss", json!({ &missing: {} }));
    let line = ctx.create(&b, &id).assert_error_line();
    assert!(
        line.contains(&format!("linux.netDevices.{missing}"))
            && line.contains("no network interface"),
        "{line}"
    );
    ctx.assert_nothing_left(&id, &b);

    let (id, b) = bundle_moving(
        &ctx,
        "netbadname",
        json!({ &veth.a: { "name": "no/slash" } }),
    );
    refused(
        &ctx,
        &veth,
        &id,
        &b,
        &format!("linux.netDevices.{}.name", veth.a),
    );

    // The kernel would move the interface before it found the name taken.
    let (id, b) = bundle_moving(&ctx, "nettaken", json!({ &veth.a: { "name": "lo" } }));
    refused(
        &ctx,
        &veth,
        &id,
        &b,
        &format!("linux.netDevices.{}.name", veth.a),
    );

    let (id, mut b) = bundle_moving(&ctx, "netnons", json!({ &veth.a: {} }));
    b.namespaces(&["pid", "ipc", "uts", "mount"]);
    refused(&ctx, &veth, &id, &b, "linux.netDevices");
}

/// A network namespace made with `ip netns add`, deleted when the guard drops.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new() -> NetNs {
        let name = format!("net{}ns", std::process::id() % 100_000);
        run(&["ip", "netns", "add", &name]);
        NetNs { name }
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A network namespace joined by path (what podman and CRI do with their CNI
/// namespaces): the container's /sys shows that namespace's devices, not the
/// host's. Runs with runc too.
#[test]
fn sysfs_shows_the_devices_of_a_joined_network_namespace() {
    let ctx = Ctx::new();
    let ns = NetNs::new();
    let dummy = format!("{}d", ns.name);
    // A veth pair made inside (the dummy driver may be missing).
    run(&[
        "ip",
        "-n",
        &ns.name,
        "link",
        "add",
        &dummy,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{dummy}2"),
    ]);
    let veth = Veth::new(); // a host-only interface that must not show
    let (id, mut b) = ctx.id_and_bundle("netjoin");
    let out = b.with_out_dir();
    b.sh("ls /sys/class/net > /out/net.tmp; mv /out/net.tmp /out/net");
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([
            { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" },
            { "type": "network", "path": ns.path() },
        ])
    });
    ctx.create_and_start(&b, &id);
    wait_for_file(&out.join("net"), WAIT);
    let seen = fs::read_to_string(out.join("net")).expect("read net");
    let seen: Vec<&str> = seen.split_whitespace().collect();
    assert!(
        seen.contains(&dummy.as_str()),
        "/sys/class/net inside: {seen:?}"
    );
    assert!(
        !seen.contains(&veth.b.as_str()),
        "/sys/class/net inside shows the host's: {seen:?}"
    );
    ctx.wait_for_status(&id, "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
