//! A union (overlay) root, the way image-based containers get theirs: three
//! read-only layers (busybox, an app, a whiteout deleting a file of the first) plus a
//! writable container layer, mounted onto the bundle's rootfs before `create` (as
//! containerd does); and the same layers as a `mounts[]` entry of type overlay.
//!
//! Every host mount is a [`HostMount`] guard (unmounted on drop, even after a
//! failure); each test unmounts explicitly and checks that nothing stays mounted.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use capsa_integration_test::fs_fixtures::{
    add_mount, busybox_layer, is_mount_point, mount_at, overlay_data, run, run_ok, value_of,
    write_file, HostDir, HostMount,
};
use capsa_integration_test::{mountinfo, wait_for_file, Bundle, Ctx};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use serde_json::json;

const LAYER1_FILE: &str = "layer one\n";

/// Three read-only image layers in one temp dir.
struct Image {
    dir: HostDir,
}

impl Image {
    fn build() -> Image {
        let dir = HostDir::new("image");
        // layer1: the base, busybox plus two files of its own.
        let l1 = dir.subdir("layer1");
        busybox_layer(&l1);
        write_file(&l1, "etc/from-layer1", LAYER1_FILE, 0o644);
        write_file(&l1, "etc/doomed", "delete me\n", 0o644);
        // layer2: the app.
        let l2 = dir.subdir("layer2");
        write_file(
            &l2,
            "app/hello.sh",
            "#!/bin/sh\necho hello from the app layer\n",
            0o755,
        );
        // layer3: deletes layer1's /etc/doomed with a whiteout (a 0:0 char device).
        let l3 = dir.subdir("layer3/etc");
        mknod(
            &l3.join("doomed"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            makedev(0, 0),
        )
        .expect("mknod the whiteout layer3/etc/doomed c 0 0");
        Image { dir }
    }

    fn layer(&self, n: u32) -> PathBuf {
        self.dir.path().join(format!("layer{n}"))
    }

    /// The lower dirs, topmost first.
    fn lowers(&self) -> [PathBuf; 3] {
        [self.layer(3), self.layer(2), self.layer(1)]
    }

    /// Checks that no container changed a layer.
    fn assert_unchanged(&self) {
        assert_eq!(
            fs::read_to_string(self.layer(1).join("etc/from-layer1")).expect("layer1 file"),
            LAYER1_FILE,
            "a lower layer's file changed"
        );
        let mut l1_etc: Vec<String> = fs::read_dir(self.layer(1).join("etc"))
            .expect("layer1 etc")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        l1_etc.sort();
        assert_eq!(l1_etc, ["doomed", "from-layer1"], "layer1's /etc changed");
        assert!(!self.layer(2).join("etc").exists(), "layer2 was written");
        assert!(
            !self.layer(1).join("written").exists(),
            "layer1 was written"
        );
    }
}

/// A writable container layer: `upper` and `work` on the same filesystem.
struct ContainerLayer {
    dir: HostDir,
}

impl ContainerLayer {
    fn new() -> ContainerLayer {
        let dir = HostDir::new("upper");
        dir.subdir("upper");
        dir.subdir("work");
        ContainerLayer { dir }
    }

    fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }
}

/// Replaces the bundle's rootfs with an empty mount point and mounts the overlay of
/// `image` + `layer` there.
fn mount_root(b: &Bundle, image: &Image, layer: &ContainerLayer) -> HostMount {
    let rootfs = b.rootfs();
    fs::remove_dir_all(&rootfs).expect("empty the bundle's rootfs");
    fs::create_dir(&rootfs).expect("create the rootfs mount point");
    let lowers = image.lowers();
    let lower: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    HostMount::overlay(&rootfs, &lower, &layer.upper(), &layer.work())
}

/// The overlay root is written to (root.readonly off).
fn writable_root(b: &mut Bundle) {
    b.edit(|c| c["root"]["readonly"] = json!(false));
}

/// `run` to the end, asserting exit 0 (the leftover check comes after the root's
/// unmount: the overlay is a mount inside the bundle until then).
fn run_succeeds(ctx: &Ctx, b: &Bundle, id: &str) -> String {
    let out = run(ctx, b, id);
    assert!(out.success(), "the container should exit 0:\n{out}");
    out.stdout
}

fn assert_no_overlay_left(paths: &[&Path]) {
    for m in mountinfo() {
        assert!(
            !paths.iter().any(|p| m.mount_point.starts_with(p)),
            "left mounted: {}",
            m.line
        );
    }
}

const UNION_CHECKS: &str = "echo app=\"$(/app/hello.sh)\"; \
     echo layer1=\"$(cat /etc/from-layer1)\"; \
     if test -e /etc/doomed; then echo doomed=visible; else echo doomed=gone; fi; \
     echo etc=\"$(ls /etc | grep -v -e passwd -e group | tr '\\n' ' ')\"";

#[test]
fn container_on_an_overlay_of_three_layers() {
    let ctx = Ctx::new();
    let image = Image::build();
    let layer = ContainerLayer::new();
    let (id, mut b) = ctx.id_and_bundle("ovl-root");
    writable_root(&mut b);
    b.sh(&format!(
        "{UNION_CHECKS}; echo changed > /etc/from-layer1; \
         echo after=$(cat /etc/from-layer1); echo new > /written; \
         echo rootfs=$(grep ' / / ' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1)"
    ));
    let root = mount_root(&b, &image, &layer);
    let out = run_succeeds(&ctx, &b, &id);
    root.unmount();
    ctx.assert_nothing_left(&id, &b);
    assert_no_overlay_left(&[b.path(), image.dir.path(), layer.dir.path()]);

    assert_eq!(value_of(&out, "app"), "hello from the app layer", "{out}");
    assert_eq!(value_of(&out, "layer1"), "layer one", "{out}");
    assert_eq!(
        value_of(&out, "doomed"),
        "gone",
        "the whiteout hides it:\n{out}"
    );
    assert_eq!(value_of(&out, "etc"), "from-layer1 ", "{out}");
    assert_eq!(value_of(&out, "after"), "changed", "{out}");
    assert_eq!(
        value_of(&out, "rootfs"),
        "overlay",
        "the root is the overlay:\n{out}"
    );

    // The write was copied up into the container layer; the image is unchanged.
    let upper = layer.upper();
    assert_eq!(
        fs::read_to_string(upper.join("etc/from-layer1")).expect("copied-up file"),
        "changed\n"
    );
    assert_eq!(
        fs::read_to_string(upper.join("written")).expect("new file"),
        "new\n"
    );
    image.assert_unchanged();
    assert!(
        !b.rootfs().join("etc").exists(),
        "the rootfs dir itself stayed empty"
    );
}

#[test]
fn two_containers_on_the_same_layers_do_not_see_each_other() {
    let ctx = Ctx::new();
    let image = Image::build();
    let (layer_a, layer_b) = (ContainerLayer::new(), ContainerLayer::new());
    let (id_a, mut a) = ctx.id_and_bundle("ovl-a");
    let (id_b, mut b) = ctx.id_and_bundle("ovl-b");
    writable_root(&mut a);
    writable_root(&mut b);
    a.sh("echo A > /etc/from-layer1; echo a > /a-only; rm /app/hello.sh; exec sleep 1000");
    b.sh(&format!(
        "{UNION_CHECKS}; if test -e /a-only; then echo a-only=visible; \
         else echo a-only=absent; fi; echo B > /etc/from-layer1; echo b > /b-only"
    ));
    let root_a = mount_root(&a, &image, &layer_a);
    let root_b = mount_root(&b, &image, &layer_b);

    // A writes and keeps running while B looks.
    ctx.create_and_start(&a, &id_a);
    wait_for_file(&layer_a.upper().join("a-only"), Duration::from_secs(10));
    let out = run_succeeds(&ctx, &b, &id_b);
    ctx.kill(&id_a, "KILL").assert_silent_success();
    ctx.wait_for_status(&id_a, "stopped");
    ctx.delete(&id_a).assert_silent_success();
    root_a.unmount();
    root_b.unmount();
    ctx.assert_nothing_left(&id_a, &a);
    ctx.assert_nothing_left(&id_b, &b);
    assert_no_overlay_left(&[a.path(), b.path(), image.dir.path()]);

    assert_eq!(
        value_of(&out, "layer1"),
        "layer one",
        "B sees A's write:\n{out}"
    );
    assert_eq!(value_of(&out, "a-only"), "absent", "{out}");
    assert_eq!(value_of(&out, "app"), "hello from the app layer", "{out}");
    assert_eq!(value_of(&out, "doomed"), "gone", "{out}");

    let read =
        |p: PathBuf| fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(read(layer_a.upper().join("etc/from-layer1")), "A\n");
    assert_eq!(read(layer_b.upper().join("etc/from-layer1")), "B\n");
    assert!(!layer_a.upper().join("b-only").exists());
    assert!(!layer_b.upper().join("a-only").exists());
    // A's deletion is a whiteout in A's layer only.
    let wh = fs::symlink_metadata(layer_a.upper().join("app/hello.sh")).expect("A's whiteout");
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()),
        "A's rm became a whiteout in its upper dir"
    );
    assert!(!layer_b.upper().join("app").exists());
    assert!(image.layer(2).join("app/hello.sh").is_file());
    image.assert_unchanged();
}

#[test]
fn overlay_as_a_mounts_entry() {
    let ctx = Ctx::new();
    let image = Image::build();
    let layer = ContainerLayer::new();
    let (id, mut b) = ctx.id_and_bundle("ovl-mount");
    let lowers = image.lowers();
    let lower: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
    let data = overlay_data(&lower, &layer.upper(), &layer.work());
    let options: Vec<&str> = data.split(',').collect();
    add_mount(
        &mut b,
        json!({ "destination": "/data", "type": "overlay", "source": "overlay",
                "options": options }),
    );
    b.sh("echo app=\"$(/data/app/hello.sh)\"; \
         echo layer1=\"$(cat /data/etc/from-layer1)\"; \
         if test -e /data/etc/doomed; then echo doomed=visible; else echo doomed=gone; fi; \
         echo changed > /data/etc/from-layer1; echo after=$(cat /data/etc/from-layer1); \
         cat /proc/self/mountinfo");
    let out = run_ok(&ctx, &b, &id);
    assert_no_overlay_left(&[b.path(), image.dir.path(), layer.dir.path()]);
    assert!(!is_mount_point(&b.rootfs().join("data")));

    let m = mount_at(&out, "/data");
    assert_eq!(m.fs_type, "overlay", "{}", m.line);
    assert_eq!(value_of(&out, "app"), "hello from the app layer", "{out}");
    assert_eq!(value_of(&out, "layer1"), "layer one", "{out}");
    assert_eq!(value_of(&out, "doomed"), "gone", "{out}");
    assert_eq!(value_of(&out, "after"), "changed", "{out}");
    assert_eq!(
        fs::read_to_string(layer.upper().join("etc/from-layer1")).expect("copied up"),
        "changed\n"
    );
    image.assert_unchanged();
}
