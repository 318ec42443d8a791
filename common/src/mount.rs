//! The container's root filesystem: DIR bound onto itself, the kernel filesystems a distribution
//! expects, then pivot_root into it.

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Path, PathBuf};

/// Host device nodes bound into the container's /dev: mknod is refused in a user namespace.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Links every distribution expects in /dev.
const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Stops mounts made from here on from propagating to the host's (or any other) namespace.
pub fn make_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making mounts private")
}

/// Binds `source` onto `target`, with everything mounted below it.
pub fn bind(source: &Path, target: &Path) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding {} to {}", source.display(), target.display()))
}

/// Makes the bind mount at `target` read-only. Flags the kernel locked on the original (nosuid,
/// nodev, noexec, ...) must be repeated or the remount is refused.
pub fn remount_read_only(target: &Path) -> Result<()> {
    let locked = statvfs(target)
        .with_context(|| format!("reading mount flags of {}", target.display()))?
        .flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME (4096, as the kernel reports it): not in nix or libc for musl.
        (FsFlags::from_bits_retain(4096), MsFlags::MS_RELATIME),
    ] {
        if locked.contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("making {} read-only", target.display()))
}

/// Binds the host's device nodes onto empty files in `dev`, which must be a fresh tmpfs.
pub fn bind_host_devices(dev: &Path) -> Result<()> {
    for name in DEVICES {
        let node = dev.join(name);
        fs::File::create(&node).with_context(|| format!("creating {}", node.display()))?;
        bind(&Path::new("/dev").join(name), &node)?;
    }
    Ok(())
}

fn ensure_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn mount_fs(fstype: &str, target: &Path, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(Some(fstype), target, Some(fstype), flags, data)
        .with_context(|| format!("mounting {fstype} on {}", target.display()))
}

/// The new root: a directory that becomes `/` of the container.
pub struct Rootfs {
    dir: PathBuf,
}

impl Rootfs {
    /// Makes the mount tree private and binds `dir` onto itself, since pivot_root needs the
    /// new root to be a mount point. Runs in the container's new mount namespace.
    pub fn bind(dir: &Path) -> Result<Rootfs> {
        make_private()?;
        bind(dir, dir)?;
        Ok(Rootfs {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, inside: &str) -> PathBuf {
        self.dir.join(inside.trim_start_matches('/'))
    }

    /// Mounts /proc for the container's PID namespace (so only the container's processes
    /// show), hiding nothing of the tree below.
    pub fn mount_proc(&self) -> Result<()> {
        let proc = self.path("proc");
        ensure_dir(&proc)?;
        mount_fs(
            "proc",
            &proc,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )
    }

    /// Mounts /sys. sysfs shows the network devices of the mounter's network namespace and the
    /// kernel allows it only with a network namespace of our own; sharing the host's network,
    /// the host's /sys is bound read-only instead. cgroup2 goes on /sys/fs/cgroup when the
    /// kernel lets us (it needs the new cgroup namespace), otherwise is left out.
    pub fn mount_sys(&self, own_network: bool) -> Result<()> {
        let sys = self.path("sys");
        ensure_dir(&sys)?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if own_network {
            mount_fs("sysfs", &sys, flags | MsFlags::MS_RDONLY, None)?;
        } else {
            bind(Path::new("/sys"), &sys)?;
            remount_read_only(&sys)?;
        }
        let cgroup = sys.join("fs/cgroup");
        if cgroup.is_dir() {
            let _ = mount_fs("cgroup2", &cgroup, flags, None);
        }
        Ok(())
    }

    /// Builds /dev on a tmpfs: the host's harmless devices, a devpts instance of the
    /// container's own, /dev/shm, the usual links, and, with a console, the pty slave bound
    /// at /dev/console.
    pub fn mount_dev(&self, console: Option<&Path>) -> Result<()> {
        let dev = self.path("dev");
        ensure_dir(&dev)?;
        mount_fs(
            "tmpfs",
            &dev,
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=0755,size=65536k"),
        )?;
        bind_host_devices(&dev)?;

        let pts = dev.join("pts");
        ensure_dir(&pts)?;
        // gid=5 (tty) is only accepted when the group is mapped into the container.
        let tty_mapped = fs::read_to_string("/proc/self/gid_map").is_ok_and(|m| gid_mapped(&m, 5));
        let options = if tty_mapped {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        } else {
            "newinstance,ptmxmode=0666,mode=0620"
        };
        mount_fs(
            "devpts",
            &pts,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some(options),
        )?;

        let shm = dev.join("shm");
        fs::DirBuilder::new()
            .mode(0o1777)
            .create(&shm)
            .with_context(|| format!("creating {}", shm.display()))?;
        mount_fs(
            "tmpfs",
            &shm,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        )?;

        for (name, target) in DEV_LINKS {
            let link = dev.join(name);
            symlink(target, &link).with_context(|| format!("creating {}", link.display()))?;
        }
        if let Some(slave) = console {
            let node = dev.join("console");
            fs::File::create(&node).with_context(|| format!("creating {}", node.display()))?;
            bind(slave, &node)?;
        }
        Ok(())
    }

    /// Makes the new root `/`. pivot_root(".", ".") stacks the old root on top of the new one,
    /// so detaching "." removes it without needing a directory to park it in.
    pub fn pivot(self) -> Result<()> {
        nix::unistd::chdir(&self.dir)
            .with_context(|| format!("entering {}", self.dir.display()))?;
        nix::unistd::pivot_root(".", ".").context("pivot_root into the new root")?;
        umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
        nix::unistd::chdir("/").context("entering the new root")?;
        Ok(())
    }
}

/// True if `gid` appears inside the container in a gid_map text.
fn gid_mapped(map: &str, gid: u32) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&(gid as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::gid_mapped;

    #[test]
    fn reads_gid_map_lines() {
        let map = "         0       1001          1\n         1     100000      65536\n";
        assert!(gid_mapped(map, 5));
        assert!(gid_mapped(map, 0));
        assert!(!gid_mapped(map, 65537));
        assert!(!gid_mapped("0 1001 1\n", 5));
    }
}
