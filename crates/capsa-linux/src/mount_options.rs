//! `mounts[].options` → mount(2) flags, propagation and filesystem data.
//! Pure, so every option is unit-tested without mounting anything.

use nix::mount::MsFlags;

use crate::sys::mount_attr::MountAttr;

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
    /// Recursive attributes (`rro`, `rnosuid`, ...), applied to the whole
    /// subtree with mount_setattr(AT_RECURSIVE) after the mount.
    pub recursive_attr: MountAttr,
    /// `tmpcopyup`: a tmpfs starts with a copy of what the directory held.
    pub tmpcopyup: bool,
    /// `idmap` or `ridmap` (the last one given wins, as in runc).
    pub idmap: Idmap,
}

/// The id mapping an option asks for (its user namespace comes from the
/// mount's `uidMappings`/`gidMappings` or the container's, see `plan.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Idmap {
    /// No option (the mount may still be idmapped by its own mappings).
    #[default]
    None,
    /// `idmap`: the mapping is set on the top mount only, also of an `rbind`.
    Top,
    /// `ridmap`: on every mount of the bound subtree.
    Recursive,
}

impl Default for ParsedOptions {
    fn default() -> Self {
        ParsedOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            bind: false,
            recursive: false,
            data: String::new(),
            recursive_attr: MountAttr::default(),
            tmpcopyup: false,
            idmap: Idmap::None,
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
        "nosymfollow" => Set(MsFlags::from_bits_retain(MS_NOSYMFOLLOW)),
        "symfollow" => Clear(MsFlags::from_bits_retain(MS_NOSYMFOLLOW)),
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

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix does not name.
const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// The recursive options, for the features document.
const RECURSIVE: &[&str] = &[
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rnosymfollow",
    "rsymfollow",
    "rnoatime",
    "rstrictatime",
    "rrelatime",
    "ratime",
    "rnorelatime",
    "rnostrictatime",
];

/// A recursive attribute: (set, clear) bits for mount_setattr.
fn recursive_option(name: &str) -> Option<(u64, u64)> {
    use crate::sys::mount_attr::*;
    let atime = |mode: u64| (mode, MOUNT_ATTR_ATIME_MASK);
    Some(match name {
        "rro" => (MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, MOUNT_ATTR_RDONLY),
        "rnosuid" => (MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, MOUNT_ATTR_NOSUID),
        "rnodev" => (MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, MOUNT_ATTR_NODEV),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        // The atime modes are values under one mask: setting one clears the
        // mask first (the kernel insists); the "no" forms go back to relatime.
        "rnoatime" => atime(MOUNT_ATTR_NOATIME),
        "rstrictatime" => atime(MOUNT_ATTR_STRICTATIME),
        "rrelatime" | "ratime" | "rnorelatime" | "rnostrictatime" => atime(MOUNT_ATTR_RELATIME),
        _ => return None,
    })
}

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
        .chain(["bind", "rbind", "tmpcopyup", "nosymfollow", "symfollow"])
        .chain(["idmap", "ridmap"])
        .chain(RECURSIVE.iter().copied())
        .collect();
    debug_assert!(all.iter().all(|o| flag_option(o).is_some()
        || propagation_option(o).is_some()
        || recursive_option(o).is_some()
        || o.ends_with("bind")
        || o.ends_with("idmap")
        || *o == "tmpcopyup"));
    all.sort_unstable();
    all
}

/// Parses one entry's options. Every option is known or passed on as data
/// (which the filesystem, not capsa, accepts or refuses).
pub fn parse(options: &[String]) -> ParsedOptions {
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
        } else if let Some((set, clr)) = recursive_option(opt) {
            let a = &mut out.recursive_attr;
            a.attr_clr =
                (a.attr_clr | clr) & !set | (clr & crate::sys::mount_attr::MOUNT_ATTR_ATIME_MASK);
            a.attr_set = (a.attr_set & !clr) | set;
        } else if opt == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if opt == "idmap" {
            out.idmap = Idmap::Top;
        } else if opt == "ridmap" {
            out.idmap = Idmap::Recursive;
        } else if !opt.is_empty() {
            data.push(opt);
        }
    }
    out.data = data.join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> ParsedOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
    fn idmap_options_are_not_filesystem_data() {
        assert_eq!(p(&["bind"]).idmap, Idmap::None);
        let o = p(&["rbind", "idmap", "ro"]);
        assert_eq!(o.idmap, Idmap::Top);
        assert!(o.data.is_empty() && o.recursive);
        assert_eq!(p(&["bind", "ridmap"]).idmap, Idmap::Recursive);
        // The last one wins, as in runc.
        assert_eq!(p(&["ridmap", "idmap"]).idmap, Idmap::Top);
        assert!(supported().contains(&"idmap") && supported().contains(&"ridmap"));
    }

    #[test]
    fn recursive_attributes_accumulate_set_and_clear() {
        use crate::sys::mount_attr::*;
        let o = p(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert_eq!(
            o.recursive_attr.attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.recursive_attr.attr_clr, MOUNT_ATTR_ATIME_MASK);
        let o = p(&["rro", "rrw"]);
        assert_eq!(
            (o.recursive_attr.attr_set, o.recursive_attr.attr_clr),
            (0, MOUNT_ATTR_RDONLY)
        );
        let o = p(&["nosymfollow", "tmpcopyup"]);
        assert_eq!(o.flags.bits(), MS_NOSYMFOLLOW);
        assert!(o.tmpcopyup);
        assert!(supported().contains(&"rro"));
    }
}

#[cfg(test)]
#[path = "mount_options_proptests.rs"]
mod proptests;
