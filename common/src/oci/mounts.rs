//! config.json's file systems: its `mounts` in order, the devices every container gets, and
//! after the pivot its masked and read-only paths and sysctls.
//!
//! Every mount point below the root is reached through [`Rootfs::mount_point`], resolved as if
//! the root were `/`: a root file system's links cannot lead a mount out of it.

use crate::mount::{fd_path, remount_bind, Kind, Rootfs};
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Devices every container gets (runtime-spec "Default Devices").
const DEFAULT_DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Links every container gets in /dev.
const DEV_LINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// A mount's options, split into flags, propagation and what goes to the file system.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub flags: MsFlags,
    /// Flags the options clear (`rw`, `suid`, ...), which a bind's remount must not repeat.
    pub cleared: MsFlags,
    pub propagation: Option<MsFlags>,
    pub bind: bool,
    pub recursive: bool,
    /// Options for the file system itself (`mode=755`, `size=65536k`), comma-separated.
    pub data: Vec<String>,
}

impl Options {
    pub fn parse(options: &[String]) -> Options {
        let mut out = Options {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: None,
            bind: false,
            recursive: false,
            data: Vec::new(),
        };
        for option in options {
            let (set, clear) = match option.as_str() {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "bind" => {
                    out.bind = true;
                    continue;
                }
                "rbind" => {
                    out.bind = true;
                    out.recursive = true;
                    continue;
                }
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    out.propagation = Some(propagation(option).unwrap_or(MsFlags::MS_PRIVATE));
                    continue;
                }
                // Podman's and containerd's own markers, and options other runtimes add that
                // mean nothing for a mount made here.
                o if o.starts_with("x-") || o == "tmpcopyup" || o == "notmpcopyup" => continue,
                other => {
                    out.data.push(other.to_string());
                    continue;
                }
            };
            out.flags = (out.flags - clear) | set;
            out.cleared = (out.cleared - set) | clear;
        }
        out
    }

    fn data(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// The propagation flags a `rootfsPropagation` or mount option names.
pub fn propagation(name: &str) -> Option<MsFlags> {
    let (recursive, kind) = match name.strip_prefix('r') {
        Some(kind) if !kind.is_empty() => (true, kind),
        _ => (false, name),
    };
    let flag = match kind {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if recursive {
        flag | MsFlags::MS_REC
    } else {
        flag
    })
}

/// True if the host's /sys/fs/cgroup is cgroup v2 alone (unified mode).
fn unified_cgroups() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Makes each of config.json's mounts, in order, in the root. `bundle` is where relative
/// sources are found.
pub fn mount_all(rootfs: &Rootfs, mounts: &[Mount], bundle: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        mount_one(rootfs, m, bundle)
            .with_context(|| format!("mounts[{i}] ({})", m.destination().display()))?;
    }
    Ok(())
}

fn mount_one(rootfs: &Rootfs, m: &Mount, bundle: &Path) -> Result<()> {
    let options = Options::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let inside = m.destination().to_string_lossy().into_owned();
    let source = m.source().as_ref().map(|s| bundle.join(s));
    if options.bind || typ == "bind" {
        let source = source.ok_or_else(|| anyhow!("a bind mount needs a source"))?;
        return bind(rootfs, &source, &inside, &options);
    }
    let fallback_bind = |host: &str| {
        let options = Options {
            recursive: true,
            bind: true,
            ..Options::parse(m.options().as_deref().unwrap_or(&[]))
        };
        bind(rootfs, Path::new(host), &inside, &options)
    };
    if typ == "cgroup" || typ == "cgroup2" {
        // cgroup v1 hierarchies cannot be mounted anew in a namespace: the host's are bound,
        // read-only where asked, as crun does for hybrid and v1 hosts.
        if !unified_cgroups() {
            return fallback_bind("/sys/fs/cgroup");
        }
        return match mount_new(rootfs, "cgroup2", "cgroup2", &inside, &options) {
            Err(e) if is_refused(&e) => fallback_bind("/sys/fs/cgroup"),
            other => other,
        };
    }
    let source_name = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    match mount_new(rootfs, typ, &source_name, &inside, &options) {
        // Without a network namespace of its own (or as a user namespace's root over a host
        // whose /sys is partly hidden) sysfs cannot be mounted: the host's is bound.
        Err(e) if typ == "sysfs" && is_refused(&e) => fallback_bind("/sys"),
        // mqueue belongs to the IPC namespace: without one of our own, the host's is bound.
        Err(e) if typ == "mqueue" && is_refused(&e) => fallback_bind("/dev/mqueue"),
        // gid=5 is refused when group 5 is not mapped into the container.
        Err(e) if typ == "devpts" && options.data.iter().any(|d| d.starts_with("gid=")) => {
            let mut without = Options::parse(m.options().as_deref().unwrap_or(&[]));
            without.data.retain(|d| !d.starts_with("gid="));
            mount_new(rootfs, typ, &source_name, &inside, &without).map_err(|_| e)
        }
        other => other,
    }
}

fn is_refused(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<Errno>(),
            Some(Errno::EPERM) | Some(Errno::EACCES) | Some(Errno::EINVAL)
        )
    })
}

/// Mounts a new file system of type `typ` on `inside`.
fn mount_new(
    rootfs: &Rootfs,
    typ: &str,
    source: &str,
    inside: &str,
    options: &Options,
) -> Result<()> {
    let target = rootfs.mount_point(inside, Kind::Directory)?;
    let data = options.data();
    mount(
        Some(source),
        fd_path(&target).as_path(),
        Some(typ),
        options.flags,
        data.as_deref(),
    )
    .map_err(|e| anyhow::Error::new(e).context(format!("mounting {typ} on {inside}")))?;
    if let Some(propagation) = options.propagation {
        let mounted = rootfs.resolve(inside)?;
        mount(
            None::<&str>,
            fd_path(&mounted).as_path(),
            None::<&str>,
            propagation,
            None::<&str>,
        )
        .with_context(|| format!("setting the propagation of {inside}"))?;
    }
    Ok(())
}

/// Binds the host's `source` onto `inside`, then applies the flags and propagation asked.
fn bind(rootfs: &Rootfs, source: &Path, inside: &str, options: &Options) -> Result<()> {
    let kind = match std::fs::metadata(source) {
        Ok(meta) if meta.is_dir() => Kind::Directory,
        Ok(_) => Kind::File,
        Err(e) => bail!("binding {}: {e}", source.display()),
    };
    let target = rootfs.mount_point(inside, kind)?;
    let mut flags = MsFlags::MS_BIND;
    if options.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(source),
        fd_path(&target).as_path(),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| anyhow!("binding {} to {inside}: {}", source.display(), e.desc()))?;
    let remount = options.flags
        & (MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_NOATIME
            | MsFlags::MS_NODIRATIME
            | MsFlags::MS_RELATIME
            | MsFlags::MS_STRICTATIME
            | MsFlags::MS_SYNCHRONOUS
            | MsFlags::MS_DIRSYNC);
    let mounted = rootfs.resolve(inside)?;
    if !remount.is_empty() {
        remount_bind(mounted.as_fd(), remount)
            .map_err(|e| anyhow!("remounting {inside} ({remount:?}): {}", e.desc()))?;
        if options.recursive && remount.contains(MsFlags::MS_RDONLY) {
            // Every mount below too, as an `rbind` with `ro` means.
            crate::mount::make_tree_read_only(&mounted)
                .map_err(|e| anyhow!("making the mounts below {inside} read-only: {}", e.desc()))?;
        }
    }
    let propagation = options
        .propagation
        .unwrap_or(MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    mount(
        None::<&str>,
        fd_path(&mounted).as_path(),
        None::<&str>,
        propagation,
        None::<&str>,
    )
    .with_context(|| format!("setting the propagation of {inside}"))?;
    Ok(())
}

/// The default devices, config.json's `linux.devices`, and /dev's usual links, where missing.
/// Device nodes cannot be made in a user namespace: there, and always for the default ones,
/// the host's node of the same path is bound (as crun does rootless); real root makes the
/// nodes config.json describes. Without a mount namespace of the container's own
/// (`may_mount` false) nothing is bound: only the nodes real root can make are made.
pub fn make_devices(
    rootfs: &Rootfs,
    devices: &[LinuxDevice],
    may_mknod: bool,
    may_mount: bool,
) -> Result<()> {
    let Ok(dev) = rootfs.resolve("dev") else {
        return Ok(());
    };
    let missing = |inside: &str| rootfs.resolve(inside).is_err();
    for name in DEFAULT_DEVICES {
        let inside = format!("dev/{name}");
        if may_mount && missing(&inside) {
            rootfs.bind_onto(&Path::new("/dev").join(name), &inside)?;
        }
    }
    for (i, device) in devices.iter().enumerate() {
        if !may_mknod && !may_mount {
            continue;
        }
        make_device(rootfs, device, may_mknod)
            .with_context(|| format!("linux.devices[{i}] ({})", device.path().display()))?;
    }
    for (name, target) in DEV_LINKS {
        if missing(&format!("dev/{name}")) {
            let _ = nix::unistd::symlinkat(target, &dev, name);
        }
    }
    if missing("dev/ptmx") && !missing("dev/pts/ptmx") {
        let _ = nix::unistd::symlinkat("pts/ptmx", &dev, "ptmx");
    }
    Ok(())
}

fn make_device(rootfs: &Rootfs, device: &LinuxDevice, may_mknod: bool) -> Result<()> {
    let inside = device.path().to_string_lossy().into_owned();
    if !device.path().is_absolute() {
        bail!("not an absolute path");
    }
    if !may_mknod {
        let host = PathBuf::from(&inside);
        return rootfs.bind_onto(&host, &inside).map(drop);
    }
    let kind = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => nix::sys::stat::SFlag::S_IFCHR,
        LinuxDeviceType::B => nix::sys::stat::SFlag::S_IFBLK,
        LinuxDeviceType::P => nix::sys::stat::SFlag::S_IFIFO,
        LinuxDeviceType::A => bail!("type 'a' is for cgroup rules, not a device node"),
    };
    let (parent, name) = match inside.trim_matches('/').rsplit_once('/') {
        Some((parent, name)) => (parent.to_string(), name.to_string()),
        None => (String::new(), inside.trim_matches('/').to_string()),
    };
    let dir = rootfs.mount_point(&parent, Kind::Directory)?;
    // O_PATH descriptors serve as directories for mknodat only through their /proc path.
    let dir = nix::fcntl::open(
        fd_path(&dir).as_path(),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let mode = nix::sys::stat::Mode::from_bits_truncate(device.file_mode().unwrap_or(0o666));
    let dev = nix::sys::stat::makedev(device.major() as u64, device.minor() as u64);
    let _ = nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    nix::sys::stat::mknodat(&dir, name.as_str(), kind, mode, dev)
        .map_err(|e| anyhow!("mknod: {}", e.desc()))?;
    // The mode as given, not as the umask left it.
    nix::sys::stat::fchmodat(
        &dir,
        name.as_str(),
        mode,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .map_err(|e| anyhow!("chmod: {}", e.desc()))?;
    nix::unistd::fchownat(
        &dir,
        name.as_str(),
        device.uid().map(nix::unistd::Uid::from_raw),
        device.gid().map(nix::unistd::Gid::from_raw),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| anyhow!("chown: {}", e.desc()))?;
    Ok(())
}

/// In the container, after the pivot: hides each of `masked` (an empty read-only tmpfs over a
/// directory, /dev/null over anything else) and makes each of `readonly` read-only. Paths
/// that do not exist are skipped, as the runtime-spec allows.
pub fn mask_and_protect(masked: &[String], readonly: &[String]) -> Result<()> {
    for path in masked {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("linux.maskedPaths: {path}")),
        };
        let masked = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                path.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0k"),
            )
        } else {
            mount(
                Some("/dev/null"),
                path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        masked.map_err(|e| anyhow!("linux.maskedPaths: {path}: {}", e.desc()))?;
    }
    for path in readonly {
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("linux.readonlyPaths: {path}")),
        }
        mount(
            Some(path.as_str()),
            path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .and_then(|()| {
            let fd = crate::mount::open_dir(Path::new(path))
                .or_else(|_| open_path(path))
                .map_err(|_| Errno::ENOENT)?;
            remount_bind(fd.as_fd(), MsFlags::MS_RDONLY)
        })
        .map_err(|e| anyhow!("linux.readonlyPaths: {path}: {}", e.desc()))?;
    }
    Ok(())
}

fn open_path(path: &str) -> Result<std::os::fd::OwnedFd> {
    Ok(nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?)
}

/// Writes config.json's `linux.sysctl`, in the container after the pivot.
pub fn write_sysctls(sysctl: &std::collections::HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        if key.contains('/') || key.split('.').any(|part| part.is_empty() || part == "..") {
            bail!("linux.sysctl: '{key}' is no sysctl name");
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, &sysctl[key])
            .with_context(|| format!("linux.sysctl: writing {path}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let words = [
            "nosuid",
            "ro",
            "rw",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rbind",
            "rslave",
        ];
        let options = Options::parse(&words.map(String::from));
        assert_eq!(options.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(options.data, ["mode=755", "size=65536k"]);
        assert!(options.bind && options.recursive);
        assert_eq!(
            options.propagation,
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(
            propagation("rshared"),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        assert_eq!(propagation("bogus"), None);
    }
}
