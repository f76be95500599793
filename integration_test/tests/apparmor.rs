//! `process.apparmorProfile`. Where AppArmor is enabled
//! (`/sys/module/apparmor/parameters/enabled` is `Y`), the container's program runs
//! under the profile: a profile the test loads in complain mode with
//! `apparmor_parser` (package apparmor), or `unconfined` without it, read back from
//! `/proc/self/attr/current` inside. Where it is not, that check is SKIPPED loudly,
//! and what the runtime does instead is checked: like runc, it refuses the config
//! (one error naming the field) and leaves nothing behind.

use std::process::Command;

use capsa_integration_test::fs_fixtures::{create_fails, run_ok};
use capsa_integration_test::{capsa_only, loud, Bundle, Ctx};
use serde_json::json;

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// A complain-mode profile loaded for the test and removed on drop.
struct LoadedProfile {
    name: String,
    file: tempfile::NamedTempFile,
}

impl LoadedProfile {
    /// `None` when `apparmor_parser` is not installed.
    fn load(name: &str) -> Option<LoadedProfile> {
        use std::io::Write;
        let mut file = tempfile::NamedTempFile::new().expect("profile file");
        writeln!(
            file,
            "profile {name} flags=(attach_disconnected,mediate_deleted,complain) {{\n  file,\n  capability,\n  network,\n  mount,\n  umount,\n  signal,\n  ptrace,\n  unix,\n}}"
        )
        .expect("write profile");
        let status = Command::new("apparmor_parser")
            .arg("--replace")
            .arg(file.path())
            .status()
            .ok()?;
        assert!(status.success(), "apparmor_parser could not load {name}");
        Some(LoadedProfile {
            name: name.to_string(),
            file,
        })
    }
}

impl Drop for LoadedProfile {
    fn drop(&mut self) {
        let _ = Command::new("apparmor_parser")
            .arg("--remove")
            .arg(self.file.path())
            .status();
    }
}

fn with_profile(b: &mut Bundle, profile: &str) {
    b.edit(|c| c["process"]["apparmorProfile"] = json!(profile));
}

#[test]
fn the_process_runs_under_its_apparmor_profile() {
    if !apparmor_enabled() {
        loud(
            "SKIPPED: AppArmor is not enabled on this host \
             (/sys/module/apparmor/parameters/enabled is not Y): \
             process.apparmorProfile cannot be applied or checked here",
        );
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("secaa");
    let name = format!("capsasec-aa-{}", std::process::id());
    let loaded = LoadedProfile::load(&name);
    let (profile, shown) = match &loaded {
        Some(p) => (p.name.clone(), format!("{} (complain)", p.name)),
        None => {
            loud("NOTE: apparmor_parser is not installed; checking the `unconfined` profile");
            ("unconfined".to_string(), "unconfined".to_string())
        }
    };
    with_profile(&mut b, &profile);
    b.sh("echo label=$(cat /proc/self/attr/current)");
    let out = run_ok(&ctx, &b, &id);
    assert!(
        out.contains(&format!("label={shown}")),
        "the process should run under {shown}:\n{out}"
    );
}

#[test]
fn without_apparmor_a_profile_is_refused_like_runc() {
    if apparmor_enabled() {
        loud("SKIPPED: AppArmor is enabled here; the refusal is for hosts without it");
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("secaa-off");
    with_profile(&mut b, "capsasec-no-such-profile");
    let out = ctx.create(&b, &id);
    assert!(!out.success(), "a profile cannot be applied here:\n{out}");
    if capsa_only("the wording of the AppArmor refusal") {
        let line = create_fails(&ctx, &b, &ctx.new_id("secaa-off"));
        assert!(
            line.contains("process.apparmorProfile") && line.contains("AppArmor is not enabled"),
            "{line}"
        );
    }
    ctx.assert_nothing_left(&id, &b);
}
