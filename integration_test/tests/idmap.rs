//! Idmapped bind mounts (`idmap`, `ridmap`, `mounts[].uidMappings`/`gidMappings`):
//! owners translated in both directions, the mapping on a whole subtree or only its
//! top, a container with a user namespace lending its mappings to a mount without
//! its own, and an idmap option on a non-bind mount refused by name.
//!
//! The direction, as the kernel and runc 1.2 have it: a mapping `containerID C,
//! hostID H` makes a file owned by `C` in the source filesystem appear owned by `H`
//! through the mount (runc's idmap.bats: a file owned by 0 with `0 → 100000` shows
//! 100000 in a container without a user namespace). So "host uid 1000 is root in the
//! container" is `containerID 1000, hostID 0`.
//!
//! runc 1.1.5 has no idmapped mounts: every test skips loudly for it.

use std::fs;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use capsa_integration_test::fs_fixtures::{
    add_bind, add_mount, add_tmpfs, create_fails, is_mount_point, mount_at, run_ok, value_of,
    HostDir,
};
use capsa_integration_test::{capsa_only, loud, runc_deviates, Ctx};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};

/// True (after a loud notice) when this runtime or host cannot run the test.
fn skip(what: &str) -> bool {
    if runc_deviates(&format!("runc 1.1.5 has no idmapped mounts: {what}")) {
        return true;
    }
    if let Some(why) = host_lacks_idmap() {
        loud(&format!("SKIPPED: {what}: {why}"));
        return true;
    }
    false
}

/// Idmapped mounts need Linux 5.12, and a filesystem that allows them (tmpfs
/// only since 6.3). The host dirs of these tests live in the temp dir.
fn host_lacks_idmap() -> Option<String> {
    let release = nix::sys::utsname::uname().ok()?;
    let release = release.release().to_string_lossy().into_owned();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if version < (5, 12) {
        return Some(format!("kernel {release} is older than 5.12"));
    }
    let tmp = std::env::temp_dir();
    let st = nix::sys::statfs::statfs(&tmp).ok()?;
    if st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC && version < (6, 3) {
        return Some(format!(
            "{} is a tmpfs, which allows idmapped mounts only since Linux 6.3",
            tmp.display()
        ));
    }
    None
}

/// `[{containerID, hostID, size}]`.
fn map(container: u32, host: u32, size: u32) -> Value {
    json!([{ "containerID": container, "hostID": host, "size": size }])
}

/// A bind mount entry with `options` and, when given, its own mappings (the same
/// for uids and gids).
fn idmapped(source: &Path, destination: &str, options: &[&str], maps: Option<Value>) -> Value {
    let mut m = json!({ "destination": destination, "type": "bind", "source": source,
                        "options": options });
    if let Some(maps) = maps {
        m["uidMappings"] = maps.clone();
        m["gidMappings"] = maps;
    }
    m
}

/// `key=<uid>:<gid>` of `path`, as the container sees it.
fn owner(key: &str, path: &str) -> String {
    format!("echo {key}=$(stat -c %u:%g {path})")
}

/// `uid:gid` of a host path.
fn host_owner(path: &Path) -> String {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    format!("{}:{}", m.uid(), m.gid())
}

fn touch_owned(path: &Path, uid: u32, gid: u32) {
    fs::write(path, "x").unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    lchown(path, Some(uid), Some(gid)).expect("chown");
}

/// Host processes whose `/proc/<pid>/uid_map` is exactly `one line` (the user
/// namespace helper of a mapping no container uses would show up here).
fn processes_with_uid_map(line: &str) -> Vec<String> {
    let want: Vec<&str> = line.split_whitespace().collect();
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(text) = fs::read_to_string(e.path().join("uid_map")) else {
            continue;
        };
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        if lines == [want.clone()] {
            pids.push(name);
        }
    }
    pids
}

/// A host bind mount (`mount --bind source target`), detached on drop.
struct HostBind(PathBuf);

impl HostBind {
    fn new(source: &Path, target: &Path) -> HostBind {
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap_or_else(|e| {
            panic!(
                "mount --bind {} {}: {e}",
                source.display(),
                target.display()
            )
        });
        HostBind(target.to_path_buf())
    }
}

impl Drop for HostBind {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    lchown(path, Some(uid), Some(gid)).expect("chown");
    if fs::symlink_metadata(path).expect("stat").is_dir() {
        for e in fs::read_dir(path).expect("read dir") {
            chown_tree(&e.expect("dir entry").path(), uid, gid);
        }
    }
}

// ---------------------------------------------------------------------------------------

#[test]
fn idmap_translates_owners_both_ways() {
    if skip("idmap_translates_owners_both_ways") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("idmap-basic");
    let host = HostDir::new("idmap-basic");
    // The case of a volume owned by host uid 1000: root in the container.
    let data = host.subdir("data");
    lchown(&data, Some(1000), Some(1000)).expect("chown data");
    touch_owned(&data.join("f"), 1000, 1000);
    // The same files through the mapping as the brief wrote it, 0 → 1000: what the
    // source has as 0 shows as 1000, and 1000 (outside the range) as the overflow id.
    let other = host.subdir("other");
    touch_owned(&other.join("zero"), 0, 0);
    touch_owned(&other.join("thousand"), 1000, 1000);
    add_mount(
        &mut b,
        idmapped(
            &data,
            "/data",
            &["bind", "idmap", "nosuid"],
            Some(map(1000, 0, 1)),
        ),
    );
    add_mount(
        &mut b,
        idmapped(&other, "/other", &["bind", "idmap"], Some(map(0, 1000, 1))),
    );
    b.sh(&[
        owner("f", "/data/f"),
        owner("dir", "/data"),
        "touch /data/new && echo new=ok".to_string(),
        owner("new", "/data/new"),
        owner("zero", "/other/zero"),
        owner("thousand", "/other/thousand"),
        "cat /proc/self/mountinfo".to_string(),
    ]
    .join("; "));
    let out = run_ok(&ctx, &b, &id);

    assert_eq!(
        value_of(&out, "f"),
        "0:0",
        "host 1000 is root inside:\n{out}"
    );
    assert_eq!(value_of(&out, "dir"), "0:0", "{out}");
    assert_eq!(value_of(&out, "new"), "0:0", "{out}");
    assert_eq!(
        host_owner(&data.join("new")),
        "1000:1000",
        "a file root created through the mount must belong to host uid 1000"
    );
    assert_eq!(value_of(&out, "zero"), "1000:1000", "{out}");
    let overflow = fs::read_to_string("/proc/sys/kernel/overflowuid").expect("overflowuid");
    assert_eq!(
        value_of(&out, "thousand"),
        format!("{0}:{0}", overflow.trim()),
        "an id outside the mapping shows as the overflow id:\n{out}"
    );
    let m = mount_at(&out, "/data");
    assert!(
        m.has_option("idmapped"),
        "/data is not idmapped: {}",
        m.line
    );
    assert!(
        m.has_option("nosuid"),
        "nosuid of an idmapped mount: {}",
        m.line
    );
    assert!(
        processes_with_uid_map("1000 0 1").is_empty()
            && processes_with_uid_map("0 1000 1").is_empty(),
        "a user namespace helper of the mount mappings is still alive"
    );
}

#[test]
fn ridmap_maps_every_mount_of_the_subtree_idmap_only_the_top() {
    if skip("ridmap_maps_every_mount_of_the_subtree_idmap_only_the_top") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("idmap-rec");
    let host = HostDir::new("idmap-rec");
    let tree = host.subdir("tree");
    let sub = host.subdir("tree/sub");
    let other = host.subdir("other");
    touch_owned(&tree.join("top"), 1000, 1000);
    touch_owned(&other.join("below"), 1000, 1000);
    let _submount = HostBind::new(&other, &sub);
    // Not the other tests' mappings: each test looks for its own helpers.
    let maps = Some(map(1000, 0, 2));
    add_mount(
        &mut b,
        idmapped(&tree, "/r", &["rbind", "ridmap"], maps.clone()),
    );
    add_mount(&mut b, idmapped(&tree, "/i", &["rbind", "idmap"], maps));
    b.sh(&[
        owner("r-top", "/r/top"),
        owner("r-below", "/r/sub/below"),
        owner("i-top", "/i/top"),
        owner("i-below", "/i/sub/below"),
        "cat /proc/self/mountinfo".to_string(),
    ]
    .join("; "));
    let out = run_ok(&ctx, &b, &id);

    assert_eq!(value_of(&out, "r-top"), "0:0", "{out}");
    assert_eq!(
        value_of(&out, "r-below"),
        "0:0",
        "ridmap must map the submount too:\n{out}"
    );
    assert_eq!(value_of(&out, "i-top"), "0:0", "{out}");
    assert_eq!(
        value_of(&out, "i-below"),
        "1000:1000",
        "idmap with rbind maps only the top mount:\n{out}"
    );
    assert!(mount_at(&out, "/r/sub").has_option("idmapped"), "{out}");
    assert!(!mount_at(&out, "/i/sub").has_option("idmapped"), "{out}");
    assert!(is_mount_point(&sub), "the host's submount must stay");
}

#[test]
fn idmap_without_mappings_takes_the_containers_user_namespace() {
    const HOST: u32 = 100_000;
    if skip("idmap_without_mappings_takes_the_containers_user_namespace") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("idmap-userns");
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "user" }));
        c["linux"]["uidMappings"] = map(0, HOST, 65536);
        c["linux"]["gidMappings"] = map(0, HOST, 65536);
    });
    chown_tree(&b.rootfs(), HOST, HOST);
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle");
    // Host files owned by root: nobody in the container without the idmap, root
    // with it.
    let host = HostDir::new("idmap-userns");
    host.make_traversable();
    let shared = host.subdir("shared");
    touch_owned(&shared.join("f"), 0, 0);
    add_mount(
        &mut b,
        idmapped(&shared, "/shared", &["bind", "idmap"], None),
    );
    add_bind(&mut b, &shared, "/plain", &["bind"]);
    b.sh(&[
        "echo uid=$(id -u)".to_string(),
        owner("idmapped", "/shared/f"),
        owner("plain", "/plain/f"),
        "touch /shared/new && echo new=ok".to_string(),
        owner("new", "/shared/new"),
    ]
    .join("; "));
    let out = run_ok(&ctx, &b, &id);

    assert_eq!(value_of(&out, "uid"), "0", "{out}");
    assert_eq!(
        value_of(&out, "idmapped"),
        "0:0",
        "the container's mappings must apply:\n{out}"
    );
    assert_eq!(value_of(&out, "plain"), "65534:65534", "{out}");
    assert_eq!(value_of(&out, "new"), "0:0", "{out}");
    assert_eq!(
        host_owner(&shared.join("new")),
        "0:0",
        "container root writes as host root through the mount, not as {HOST}"
    );
}

#[test]
fn idmap_without_mappings_takes_a_joined_user_namespace() {
    const HOST: u32 = 100_000;
    if skip("idmap_without_mappings_takes_a_joined_user_namespace") {
        return;
    }
    let ctx = Ctx::new();
    let userns_of = |b: &mut capsa_integration_test::Bundle, ns: Value| {
        b.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(ns);
            c["linux"]["uidMappings"] = map(0, HOST, 65536);
            c["linux"]["gidMappings"] = map(0, HOST, 65536);
        });
        chown_tree(&b.rootfs(), HOST, HOST);
        fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle");
    };
    // A created container owns the user namespace the second one joins.
    let (owner_id, mut owner_b) = ctx.id_and_bundle("idmap-nsowner");
    userns_of(&mut owner_b, json!({ "type": "user" }));
    let pid_file = ctx.base().join("owner.pid");
    ctx.create_with_pid_file(&owner_b, &owner_id, &pid_file)
        .assert_silent_success();
    let pid = capsa_integration_test::read_pid_file(&pid_file);

    let (id, mut b) = ctx.id_and_bundle("idmap-joined");
    // Only /proc and the idmapped mount, on a mount point the rootfs has:
    // capsa's init does not become the joined namespace's root (runc's nsexec
    // does setresuid(0)), so it cannot create files there yet (EOVERFLOW), a
    // limitation of joining, not of idmapped mounts.
    fs::create_dir_all(b.rootfs().join("shared")).expect("mkdir rootfs/shared");
    b.edit(|c| {
        c["mounts"] = json!([{ "destination": "/proc", "type": "proc", "source": "proc" }]);
        c["linux"]["maskedPaths"] = json!([]);
        c["linux"]["readonlyPaths"] = json!([]);
    });
    userns_of(
        &mut b,
        json!({ "type": "user", "path": format!("/proc/{pid}/ns/user") }),
    );
    let host = HostDir::new("idmap-joined");
    host.make_traversable();
    let shared = host.subdir("shared");
    touch_owned(&shared.join("f"), 0, 0);
    add_mount(
        &mut b,
        idmapped(&shared, "/shared", &["bind", "ridmap"], None),
    );
    b.sh(&owner("idmapped", "/shared/f"));
    let out = run_ok(&ctx, &b, &id);
    assert_eq!(
        value_of(&out, "idmapped"),
        "0:0",
        "the joined user namespace's mappings must apply:\n{out}"
    );
    ctx.delete_force(&owner_id).assert_success();
    ctx.assert_nothing_left(&owner_id, &owner_b);
}

#[test]
fn idmap_on_a_non_bind_mount_is_refused_by_name() {
    if skip("idmap_on_a_non_bind_mount_is_refused_by_name") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("idmap-tmpfs");
    let index = add_tmpfs(&mut b, "/t", &["idmap"]);
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("the error names mounts[i].options") {
        assert!(
            line.contains(&format!("mounts[{index}].options")) && line.contains("bind mounts only"),
            "{line}"
        );
    }
    // Mappings without the option, on a tmpfs: the same.
    let (id, mut b) = ctx.id_and_bundle("idmap-tmpfs");
    let index = add_mount(
        &mut b,
        json!({ "destination": "/t", "type": "tmpfs", "source": "tmpfs",
                "uidMappings": map(0, 1001, 1), "gidMappings": map(0, 1001, 1) }),
    );
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("the error names mounts[i].uidMappings") {
        assert!(
            line.contains(&format!("mounts[{index}].uidMappings")),
            "{line}"
        );
    }
    // A source that does not exist: refused before anything is made.
    let (id, mut b) = ctx.id_and_bundle("idmap-nosrc");
    let index = add_mount(
        &mut b,
        idmapped(
            Path::new("/nonexistent-capsa-idmap"),
            "/x",
            &["bind", "idmap"],
            Some(map(0, 1002, 1)),
        ),
    );
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("the error names mounts[i]") {
        assert!(line.contains(&format!("mounts[{index}]")), "{line}");
    }
    assert!(
        processes_with_uid_map("0 1002 1").is_empty(),
        "the user namespace helper outlived the failed create"
    );
}
