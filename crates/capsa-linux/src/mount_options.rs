//! `mounts[].options` → mount(2) flags, propagation and filesystem data.
//! Pure, so every option is unit-tested without mounting anything.

use nix::mount::MsFlags;

/// What one `mounts[]` entry's options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOptions {
    /// Flags for the mount call (`MS_RDONLY`, `MS_NOSUID`, ...).
    pub flags: MsFlags,
    /// Propagation changes applied after the mount, in order.
    pub propagation: Vec<MsFlags>,
    /// `bind` or `rbind` asked for.
    pub bind: bool,
    /// `rbind`: bind the whole subtree.
    pub recursive: bool,
    /// Comma-joined options the filesystem itself interprets (`mode=755`).
    pub data: String,
}

impl Default for ParsedOptions {
    fn default() -> Self {
        ParsedOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            bind: false,
            recursive: false,
            data: String::new(),
        }
    }
}

/// Whether an option sets or clears its flag.
enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
}

fn flag_option(name: &str) -> Option<Effect> {
    use Effect::{Clear, Set};
    Some(match name {
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "remount" => Set(MsFlags::MS_REMOUNT),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        _ => return None,
    })
}

fn propagation_option(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Options that capsa recognises but does not implement yet: refused by name
/// rather than passed to the filesystem as data, where they would fail with a
/// bare EINVAL or, worse, be ignored.
const NOT_YET: &[&str] = &[
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnoatime",
    "ratime",
    "rrelatime",
    "rnorelatime",
    "rstrictatime",
    "rnostrictatime",
    "rnodiratime",
    "rdiratime",
    "nosymfollow",
    "rnosymfollow",
    "idmap",
    "ridmap",
    "tmpcopyup",
];

/// Every option `parse` implements, for the features document.
pub fn supported() -> Vec<&'static str> {
    let flags = [
        "ro",
        "rw",
        "nosuid",
        "suid",
        "nodev",
        "dev",
        "noexec",
        "exec",
        "sync",
        "async",
        "dirsync",
        "remount",
        "mand",
        "nomand",
        "atime",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "silent",
        "loud",
    ];
    let propagation = [
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ];
    let mut all: Vec<&'static str> = flags
        .iter()
        .chain(propagation.iter())
        .copied()
        .chain(["bind", "rbind"])
        .collect();
    debug_assert!(all.iter().all(|o| flag_option(o).is_some()
        || propagation_option(o).is_some()
        || o.ends_with("bind")));
    all.sort_unstable();
    all
}

/// Parses one entry's options. `Err` names the option capsa refuses.
pub fn parse(options: &[String]) -> Result<ParsedOptions, String> {
    let mut out = ParsedOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        if let Some(effect) = flag_option(opt) {
            match effect {
                Effect::Set(f) => out.flags.insert(f),
                Effect::Clear(f) => out.flags.remove(f),
            }
        } else if let Some(p) = propagation_option(opt) {
            out.propagation.push(p);
        } else if opt == "bind" {
            out.bind = true;
        } else if opt == "rbind" {
            out.bind = true;
            out.recursive = true;
        } else if NOT_YET.contains(&opt) {
            return Err(format!(
                "mount option {opt:?} is not supported by capsa yet"
            ));
        } else if !opt.is_empty() {
            data.push(opt);
        }
    }
    out.data = data.join(",");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> ParsedOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = p(&["nosuid", "noexec", "nodev", "ro", "rw", "strictatime"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME
        );
        assert!(o.data.is_empty());
    }

    #[test]
    fn data_options_pass_through() {
        let o = p(&["nosuid", "mode=755", "size=65536k"]);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.flags, MsFlags::MS_NOSUID);
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "rprivate", "ro"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        let o = p(&["bind"]);
        assert!(o.bind && !o.recursive);
    }

    #[test]
    fn unimplemented_options_are_refused_by_name() {
        let e = parse(&["rro".to_string()]).unwrap_err();
        assert_eq!(e, "mount option \"rro\" is not supported by capsa yet");
    }
}
