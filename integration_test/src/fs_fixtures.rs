//! Fixtures for the root filesystem tests (`tests/rootfs.rs` with `rootfs/`, `tests/devices.rs`,
//! `tests/overlay.rs`): host temp dirs, host mounts undone on drop, image layers,
//! `/proc/self/mountinfo` as a container prints it, and one-shot container runs.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};

use crate::{mountinfo, Bundle, CmdOutput, Ctx, BUSYBOX};

/// Applets linked into a layer built by [`busybox_layer`].
const LAYER_APPLETS: &[&str] = &[
    "sh", "true", "false", "sleep", "cat", "ls", "echo", "test", "[", "stat", "grep", "touch",
    "mkdir", "rm", "readlink", "id", "mount", "wc", "head",
];

/// A host temp directory (canonical path, removed on drop).
pub struct HostDir {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl HostDir {
    /// `/tmp/capsa-it-<prefix>-XXXX`, unique per call.
    pub fn new(prefix: &str) -> HostDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("capsa-it-{prefix}-"))
            .tempdir()
            .expect("create host temp dir");
        let path = fs::canonicalize(dir.path()).expect("canonicalize host temp dir");
        HostDir { _dir: dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<dir>/<rel>`, created as a directory (with its parents).
    pub fn subdir(&self, rel: &str) -> PathBuf {
        let p = self.path.join(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }

    /// Makes the directory (and so its contents) reachable by other users, e.g. the
    /// mapped root of a user namespace.
    pub fn make_traversable(&self) {
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o755))
            .expect("chmod host temp dir");
    }
}

/// True when `path` is a mount point in the test's (the host's) mount namespace.
pub fn is_mount_point(path: &Path) -> bool {
    mountinfo().iter().any(|m| m.mount_point == path)
}

/// A mount made on the host for a test, detached on drop (also after a panic), so
/// the temp dir under it can be removed and nothing stays mounted.
///
/// Declare it *after* the [`HostDir`] or [`Bundle`] it lives in, so it drops first.
pub struct HostMount {
    target: PathBuf,
    mounted: bool,
}

impl HostMount {
    /// `mount -t tmpfs -o <data> tmpfs <target>`.
    pub fn tmpfs(target: &Path, data: &str) -> HostMount {
        Self::mount(target, "tmpfs", "tmpfs", data)
    }

    /// `mount -t overlay -o lowerdir=<top:...:bottom>,upperdir=..,workdir=.. overlay <target>`.
    pub fn overlay(target: &Path, lower: &[&Path], upper: &Path, work: &Path) -> HostMount {
        Self::mount(
            target,
            "overlay",
            "overlay",
            &overlay_data(lower, upper, work),
        )
    }

    fn mount(target: &Path, source: &str, fstype: &str, data: &str) -> HostMount {
        let data = (!data.is_empty()).then_some(data);
        mount(Some(source), target, Some(fstype), MsFlags::empty(), data).unwrap_or_else(|e| {
            panic!(
                "mount -t {fstype} -o {} {source} {}: {e}",
                data.unwrap_or(""),
                target.display()
            )
        });
        HostMount {
            target: target.to_path_buf(),
            mounted: true,
        }
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// `mount --make-<propagation>` (`MS_SHARED`, `MS_PRIVATE`, ...) of this mount.
    pub fn set_propagation(&self, flags: MsFlags) -> &Self {
        mount(
            None::<&str>,
            &self.target,
            None::<&str>,
            flags,
            None::<&str>,
        )
        .unwrap_or_else(|e| {
            panic!(
                "set propagation {flags:?} on {}: {e}",
                self.target.display()
            )
        });
        self
    }

    /// Unmounts (retrying while busy, detaching at last) and asserts that nothing is
    /// mounted at the target afterwards.
    pub fn unmount(mut self) {
        self.detach();
        assert!(
            !is_mount_point(&self.target),
            "{} is still mounted after the unmount",
            self.target.display()
        );
    }

    fn detach(&mut self) {
        if !self.mounted {
            return;
        }
        self.mounted = false;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if !is_mount_point(&self.target) {
                return;
            }
            match umount2(&self.target, MntFlags::empty()) {
                Ok(()) => continue,
                Err(nix::errno::Errno::EBUSY) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(_) => {
                    let _ = umount2(&self.target, MntFlags::MNT_DETACH);
                    return;
                }
            }
        }
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        self.detach();
    }
}

/// `lowerdir=a:b:c,upperdir=u,workdir=w` (lower layers topmost first, as overlayfs
/// wants them).
pub fn overlay_data(lower: &[&Path], upper: &Path, work: &Path) -> String {
    let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    )
}

/// Fills `dir` with a minimal busybox root: the static busybox, applet links in
/// `/bin`, and the directories a container needs (`proc`, `sys`, `dev`, `tmp`, `etc`).
pub fn busybox_layer(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(dir.join(d)).expect("create layer dir");
    }
    fs::copy(BUSYBOX, dir.join("bin/busybox")).expect("copy busybox into layer");
    for applet in LAYER_APPLETS {
        symlink("busybox", dir.join("bin").join(applet)).expect("link busybox applet");
    }
}

/// Writes `content` to `<dir>/<rel>`, creating the parents, with `mode`.
pub fn write_file(dir: &Path, rel: &str, content: &str, mode: u32) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod file");
    p
}

/// Appends one `mounts[]` entry; returns its index.
pub fn add_mount(b: &mut Bundle, entry: Value) -> usize {
    let mut index = 0;
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.push(entry);
        index = mounts.len() - 1;
    });
    index
}

/// Appends a `tmpfs` mount at `destination` with `options`; returns its index.
pub fn add_tmpfs(b: &mut Bundle, destination: &str, options: &[&str]) -> usize {
    add_mount(
        b,
        json!({ "destination": destination, "type": "tmpfs", "source": "tmpfs",
                "options": options }),
    )
}

/// Appends a bind mount of host `source` at `destination` with `options` (which
/// should include `bind` or `rbind`); returns its index.
pub fn add_bind(b: &mut Bundle, source: &Path, destination: &str, options: &[&str]) -> usize {
    add_mount(
        b,
        json!({ "destination": destination, "type": "bind", "source": source,
                "options": options }),
    )
}

/// `run --bundle <b> <id>`: the container runs to its end in the foreground and is
/// deleted by the runtime; its stdout is the output's stdout.
pub fn run(ctx: &Ctx, b: &Bundle, id: &str) -> CmdOutput {
    ctx.cmd(&["run", "--bundle", b.path_str(), id])
}

/// [`run`], asserting exit 0 and that nothing is left behind; returns stdout.
pub fn run_ok(ctx: &Ctx, b: &Bundle, id: &str) -> String {
    let out = run(ctx, b, id);
    assert!(out.success(), "the container should exit 0:\n{out}");
    ctx.assert_nothing_left(id, b);
    out.stdout
}

/// `create` must fail with exactly one error line and leave nothing behind;
/// returns the line.
pub fn create_fails(ctx: &Ctx, b: &Bundle, id: &str) -> String {
    let out = ctx.create(b, id);
    let line = out.assert_error_line();
    ctx.assert_nothing_left(id, b);
    line
}

/// The value printed as `key=value` on a line of its own (the last such line).
pub fn value_of<'a>(stdout: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line `{key}=...` in the container's output:\n{stdout}"))
}

/// One line of `/proc/<pid>/mountinfo` with every field, as a container prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountLine {
    pub mount_id: u64,
    pub parent_id: u64,
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (field 6): `ro`, `nosuid`, `noatime`, ...
    pub options: Vec<String>,
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Super-block options: `size=1024k`, `mode=700`, ...
    pub super_options: Vec<String>,
    pub line: String,
}

impl MountLine {
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
    }

    pub fn has_super_option(&self, opt: &str) -> bool {
        self.super_options.iter().any(|o| o == opt)
    }

    /// The N of optional field `<tag>:N` (`shared`, `master`).
    pub fn peer_group(&self, tag: &str) -> Option<u64> {
        let prefix = format!("{tag}:");
        self.optional
            .iter()
            .find_map(|o| o.strip_prefix(&prefix)?.parse().ok())
    }
}

/// Parses every mountinfo line of `text`, skipping lines that are not mountinfo
/// (so a container can print other things around it).
pub fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountLine> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    if l.len() < 6 || r.len() < 2 {
        return None;
    }
    let split = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
    Some(MountLine {
        mount_id: l[0].parse().ok()?,
        parent_id: l[1].parse().ok()?,
        root: l[3].to_string(),
        mount_point: l[4].to_string(),
        options: split(l[5]),
        optional: l[6..].iter().map(|s| s.to_string()).collect(),
        fs_type: r[0].to_string(),
        source: r[1].to_string(),
        super_options: r.get(2).map(|s| split(s)).unwrap_or_default(),
        line: line.to_string(),
    })
}

/// The topmost mount at `mount_point` in mountinfo `text`; panics if none.
pub fn mount_at(text: &str, mount_point: &str) -> MountLine {
    parse_mountinfo(text)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == mount_point)
        .unwrap_or_else(|| {
            panic!("no mount at {mount_point} in the container's mountinfo:\n{text}")
        })
}

/// Asserts that the topmost mount at each `(mount point, option)` pair's mount point in
/// mountinfo `text` carries that option.
pub fn assert_mount_options(text: &str, want: &[(&str, &str)]) {
    for (point, opt) in want {
        let m = mount_at(text, point);
        assert!(m.has_option(opt), "{point} lacks {opt}: {}", m.line);
    }
}

/// True when mountinfo `text` has a mount at `mount_point`.
pub fn has_mount_at(text: &str, mount_point: &str) -> bool {
    parse_mountinfo(text)
        .iter()
        .any(|m| m.mount_point == mount_point)
}

/// The host's mountinfo line for `mount_point` (topmost), with every field.
pub fn host_mount_at(mount_point: &Path) -> MountLine {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    mount_at(&text, &mount_point.display().to_string())
}
