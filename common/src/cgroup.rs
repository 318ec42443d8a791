//! Control groups: finding the hierarchies, creating a cgroup, giving it to another owner,
//! setting its resource limits, moving processes into it and removing it with everything below.
//!
//! Nothing here knows what a container is: contain's use of it (which cgroup a container gets,
//! and when) is in crate::container_cgroup. Every cgroup is reached through the descriptor of
//! its parent, one name at a time and without following links, from the descriptor of a mount
//! point read from /proc/self/mountinfo: a path that changes meanwhile cannot lead elsewhere.
//! The same code works on a plain directory tree that mimics a cgroup file system, which is
//! how the tests exercise it (this machine's cgroup v2 has no controllers to limit with).

use anyhow::{anyhow, bail, Context, Result};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, Mode};
use nix::unistd::{fchown, fchownat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which cgroup interface a hierarchy speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The unified hierarchy (cgroup2): one tree, every controller.
    V2,
    /// A legacy hierarchy: one tree per controller (or per few).
    V1,
}

/// A mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub path: PathBuf,
    pub version: Version,
    /// The controllers of a v1 hierarchy (from its mount options); empty for v2, whose
    /// controllers each cgroup lists in cgroup.controllers.
    pub controllers: Vec<String>,
}

/// The cgroup hierarchies mounted in this mount namespace whose root is the root of this
/// process's cgroup namespace (a bind of a subtree elsewhere is not a hierarchy's root).
pub fn mounts() -> Result<Vec<Mount>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

/// The unified (v2) hierarchy: on a pure v2 host at /sys/fs/cgroup, on a hybrid one usually at
/// /sys/fs/cgroup/unified.
pub fn unified_mount() -> Result<Option<Mount>> {
    Ok(mounts()?.into_iter().find(|m| m.version == Version::V2))
}

/// Mount options of a v1 hierarchy that name no controller (see cgroups(7)).
const V1_OPTIONS: [&str; 8] = [
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "none",
    "all",
    "clone_children",
    "cpuset_v2_mode",
];

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let (root, mount_point) = (fields.get(3)?, fields.get(4)?);
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let _source = after.next()?;
            let options = after.next().unwrap_or("");
            if *root != "/" {
                return None;
            }
            let path = PathBuf::from(crate::mount::unescape_mountinfo(mount_point));
            match fstype {
                "cgroup2" => Some(Mount {
                    path,
                    version: Version::V2,
                    controllers: Vec::new(),
                }),
                "cgroup" => Some(Mount {
                    path,
                    version: Version::V1,
                    controllers: options
                        .split(',')
                        .filter(|o| !V1_OPTIONS.contains(o) && !o.contains('='))
                        .map(str::to_string)
                        .collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The cgroup v2 path of a process (`/` is its cgroup namespace's root), from the text of its
/// /proc/PID/cgroup: the line `0::PATH`.
pub fn unified_path_in(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_string)
}

/// This process's cgroup v2 path.
pub fn own_unified_path() -> Result<Option<String>> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    Ok(unified_path_in(&text))
}

/// The names of the files a delegated v2 cgroup's new owner must own besides the directory
/// (/sys/kernel/cgroup/delegate, one a line), or the kernel's list of 6.x when it is missing.
pub fn delegate_files() -> Vec<String> {
    match std::fs::read_to_string("/sys/kernel/cgroup/delegate") {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => ["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"]
            .map(str::to_string)
            .to_vec(),
    }
}

/// Resource limits of a cgroup. `None` leaves a limit as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory in bytes (memory.max; v1 memory.limit_in_bytes).
    pub memory: Option<u64>,
    /// Number of tasks (pids.max).
    pub pids: Option<u64>,
    /// CPU time: `quota` microseconds per `period` (cpu.max; v1 cpu.cfs_quota_us and
    /// cpu.cfs_period_us).
    pub cpu: Option<CpuQuota>,
}

/// A CPU bandwidth limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuQuota {
    pub quota: u64,
    pub period: u64,
}

/// The period a CPU count is expressed in (podman's, and the kernel's default).
pub const CPU_PERIOD: u64 = 100_000;

impl CpuQuota {
    /// `cpus` CPUs' worth of time (1.5: one and a half), over [`CPU_PERIOD`].
    pub fn of_cpus(cpus: f64) -> Option<CpuQuota> {
        let quota = (cpus * CPU_PERIOD as f64).round();
        // The kernel's least quota is 1 ms.
        (cpus.is_finite() && quota >= 1000.0 && quota < u64::MAX as f64).then_some(CpuQuota {
            quota: quota as u64,
            period: CPU_PERIOD,
        })
    }
}

impl Resources {
    /// True if no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// The controllers the limits need, in the kernel's names.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut needed = Vec::new();
        if self.cpu.is_some() {
            needed.push("cpu");
        }
        if self.memory.is_some() {
            needed.push("memory");
        }
        if self.pids.is_some() {
            needed.push("pids");
        }
        needed
    }

    /// (controller, file, value) to write in a v2 cgroup.
    fn v2_settings(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut settings = Vec::new();
        if let Some(cpu) = self.cpu {
            settings.push(("cpu", "cpu.max", format!("{} {}", cpu.quota, cpu.period)));
        }
        if let Some(bytes) = self.memory {
            settings.push(("memory", "memory.max", bytes.to_string()));
        }
        if let Some(pids) = self.pids {
            settings.push(("pids", "pids.max", pids.to_string()));
        }
        settings
    }

    /// (controller, file, value) to write in v1 cgroups, in order (the period before the
    /// quota it is checked against).
    fn v1_settings(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut settings = Vec::new();
        if let Some(cpu) = self.cpu {
            settings.push(("cpu", "cpu.cfs_period_us", cpu.period.to_string()));
            settings.push(("cpu", "cpu.cfs_quota_us", cpu.quota.to_string()));
        }
        if let Some(bytes) = self.memory {
            settings.push(("memory", "memory.limit_in_bytes", bytes.to_string()));
        }
        if let Some(pids) = self.pids {
            settings.push(("pids", "pids.max", pids.to_string()));
        }
        settings
    }
}

/// Parses a byte count: digits with an optional suffix b, k, m, g or t (powers of 1024, case
/// ignored, an optional trailing "b" as in "512mb"), as podman's --memory.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(digits_end);
    let shift = match suffix {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        _ => return Err(format!("{text:?} is not a size (e.g. 512m, 2g)")),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512m, 2g)"))?;
    number
        .checked_mul(1u64 << shift)
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// One cgroup: its directory, held open.
#[derive(Debug)]
pub struct Cgroup {
    /// Its path on the host, for messages (never resolved again).
    path: PathBuf,
    /// The directory (O_RDONLY|O_DIRECTORY).
    dir: OwnedFd,
    /// The parent's directory and this one's name in it, to remove it by; None for the root of
    /// a hierarchy as opened.
    parent: Option<(OwnedFd, String)>,
    version: Version,
    /// A v1 cgroup's controllers (those of its hierarchy).
    controllers: Vec<String>,
}

fn open_dir_at(parent: &impl AsFd, name: &str) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// A name of one cgroup: not empty, no slash, not . or ..
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        bail!("{name:?} is not a cgroup name");
    }
    Ok(())
}

impl Cgroup {
    /// Opens the cgroup at `relative` (`/`-separated, `/` or empty for the root) in the
    /// hierarchy mounted as `mount`.
    pub fn open(mount: &Mount, relative: &str) -> Result<Cgroup> {
        let root_fd = nix::fcntl::open(
            &mount.path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", mount.path.display()))?;
        let mut cgroup = Cgroup {
            path: mount.path.clone(),
            dir: root_fd,
            parent: None,
            version: mount.version,
            controllers: mount.controllers.clone(),
        };
        for name in relative.split('/').filter(|n| !n.is_empty()) {
            cgroup = cgroup.open_child(name)?;
        }
        Ok(cgroup)
    }

    /// Opens the cgroup at `relative` in the hierarchy mounted as `mount`, creating it and
    /// whatever of its parents is missing (as an OCI runtime's cgroupsPath wants).
    pub fn create_all(mount: &Mount, relative: &str) -> Result<Cgroup> {
        let mut cgroup = Cgroup::open(mount, "/")?;
        for name in relative.split('/').filter(|n| !n.is_empty()) {
            cgroup = match cgroup.create_child(name) {
                Ok(made) => made,
                // There already (or made meanwhile by someone else): open it.
                Err(_) if open_dir_at(&cgroup.dir, name).is_ok() => cgroup.open_child(name)?,
                Err(e) => return Err(e),
            };
        }
        Ok(cgroup)
    }

    fn child_of(self, name: &str, dir: OwnedFd) -> Cgroup {
        Cgroup {
            path: self.path.join(name),
            dir,
            parent: Some((self.dir, name.to_string())),
            version: self.version,
            controllers: self.controllers,
        }
    }

    /// A second handle to the same cgroup.
    pub fn duplicate(&self) -> Result<Cgroup> {
        Ok(Cgroup {
            path: self.path.clone(),
            dir: self.dir.try_clone().context("duplicating a descriptor")?,
            parent: match &self.parent {
                Some((fd, name)) => Some((
                    fd.try_clone().context("duplicating a descriptor")?,
                    name.clone(),
                )),
                None => None,
            },
            version: self.version,
            controllers: self.controllers.clone(),
        })
    }

    /// Opens the existing child cgroup `name`.
    pub fn open_child(self, name: &str) -> Result<Cgroup> {
        check_name(name)?;
        let dir = open_dir_at(&self.dir, name)
            .map_err(|e| anyhow!("opening {}: {}", self.path.join(name).display(), e.desc()))?;
        Ok(self.child_of(name, dir))
    }

    /// Creates the child cgroup `name`, which must not exist yet.
    pub fn create_child(&self, name: &str) -> Result<Cgroup> {
        check_name(name)?;
        let path = self.path.join(name);
        mkdirat(&self.dir, name, Mode::from_bits_truncate(0o755))
            .map_err(|e| anyhow!("creating cgroup {}: {}", path.display(), e.desc()))?;
        let dir = open_dir_at(&self.dir, name)
            .map_err(|e| anyhow!("opening {}: {}", path.display(), e.desc()))?;
        Ok(self.duplicate()?.child_of(name, dir))
    }

    /// Its path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Writes `value` to the file `name` of the cgroup, in one write as the kernel wants.
    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        self.try_write(name, value).map_err(|e| {
            anyhow!(
                "writing {value:?} to {}: {}",
                self.path.join(name).display(),
                e.desc()
            )
        })
    }

    fn try_write(&self, name: &str, value: &str) -> nix::Result<()> {
        let fd = openat(
            &self.dir,
            name,
            // O_TRUNC as a shell's `>`: the kernel ignores it, a stand-in file needs it.
            OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut file = std::fs::File::from(fd);
        match file.write(value.as_bytes()) {
            Ok(n) if n == value.len() => Ok(()),
            Ok(_) => Err(Errno::EIO),
            Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
        }
    }

    /// Reads the file `name` of the cgroup.
    pub fn read(&self, name: &str) -> Result<String> {
        let read = || -> nix::Result<String> {
            let fd = openat(
                &self.dir,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let mut text = String::new();
            std::fs::File::from(fd)
                .read_to_string(&mut text)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            Ok(text)
        };
        read().map_err(|e| anyhow!("reading {}: {}", self.path.join(name).display(), e.desc()))
    }

    /// Moves process `pid` (all its threads) into this cgroup.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The processes in this cgroup itself (not below it).
    pub fn processes(&self) -> Result<Vec<i32>> {
        Ok(self
            .read("cgroup.procs")?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// True while a process is in this cgroup or below it: v2's cgroup.events says so; for v1
    /// (and trees without it) every cgroup.procs below is read.
    pub fn is_populated(&self) -> bool {
        if self.version == Version::V2 {
            if let Ok(events) = self.read("cgroup.events") {
                return events.lines().any(|l| l.trim() == "populated 1");
            }
        }
        if self.processes().is_ok_and(|p| !p.is_empty()) {
            return true;
        }
        self.children()
            .unwrap_or_default()
            .into_iter()
            .any(|child| child.is_populated())
    }

    /// The child cgroups.
    pub fn children(&self) -> Result<Vec<Cgroup>> {
        let mut dir = Dir::openat(
            &self.dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow!("listing {}: {}", self.path.display(), e.desc()))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry =
                entry.map_err(|e| anyhow!("listing {}: {}", self.path.display(), e.desc()))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            if entry.file_type() == Some(nix::dir::Type::Directory) {
                names.push(name.to_string());
            }
        }
        let mut children = Vec::new();
        for name in names {
            match open_dir_at(&self.dir, &name) {
                Ok(fd) => children.push(self.duplicate()?.child_of(&name, fd)),
                // Removed meanwhile.
                Err(Errno::ENOENT) => {}
                Err(e) => bail!("opening {}: {}", self.path.join(&name).display(), e.desc()),
            }
        }
        Ok(children)
    }

    /// The controllers this v2 cgroup may enable for its children (cgroup.controllers).
    pub fn available_controllers(&self) -> Result<Vec<String>> {
        match self.version {
            Version::V1 => Ok(self.controllers.clone()),
            Version::V2 => Ok(self
                .read("cgroup.controllers")?
                .split_whitespace()
                .map(str::to_string)
                .collect()),
        }
    }

    /// The controllers enabled for the children of this v2 cgroup (cgroup.subtree_control).
    pub fn enabled_controllers(&self) -> Result<Vec<String>> {
        Ok(self
            .read("cgroup.subtree_control")?
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }

    /// Enables `controllers` for the children of this v2 cgroup, those not enabled yet. The
    /// kernel refuses (EBUSY) in a cgroup other than the root that holds processes itself.
    pub fn enable_controllers(&self, controllers: &[&str]) -> Result<()> {
        let enabled = self.enabled_controllers()?;
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| !enabled.iter().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.write("cgroup.subtree_control", &missing.join(" "))
    }

    /// Sets the limits `resources` on this cgroup. A v1 cgroup takes those of its hierarchy's
    /// controllers and ignores the others (they belong to other hierarchies).
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        let settings = match self.version {
            Version::V2 => resources.v2_settings(),
            Version::V1 => resources
                .v1_settings()
                .into_iter()
                .filter(|(controller, _, _)| self.controllers.iter().any(|c| c == controller))
                .collect(),
        };
        for (_, file, value) in settings {
            self.write(file, &value)?;
        }
        Ok(())
    }

    /// The owner of the cgroup's directory and of its cgroup.procs.
    pub fn owners(&self) -> Result<((u32, u32), (u32, u32))> {
        let dir = fstat(&self.dir).with_context(|| format!("reading {}", self.path.display()))?;
        let procs = fstatat(
            &self.dir,
            "cgroup.procs",
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| anyhow!("reading {}/cgroup.procs: {}", self.path.display(), e.desc()))?;
        Ok(((dir.st_uid, dir.st_gid), (procs.st_uid, procs.st_gid)))
    }

    /// True if user `uid` may manage this v2 cgroup: they own its directory and cgroup.procs,
    /// as a delegation by root or systemd (`Delegate=yes`) leaves it.
    pub fn is_delegated_to(&self, uid: u32) -> bool {
        self.owners()
            .is_ok_and(|((dir, _), (procs, _))| dir == uid && procs == uid)
    }

    /// Delegates this cgroup to `uid`:`gid`: gives them the directory and the files of
    /// `delegate_files` (see [`delegate_files`]) that it has, as systemd does for Delegate=yes.
    /// The limits stay the delegator's.
    pub fn delegate(&self, uid: u32, gid: u32, delegate_files: &[String]) -> Result<()> {
        let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        fchown(&self.dir, uid, gid)
            .map_err(|e| anyhow!("giving {} to {uid:?}: {}", self.path.display(), e.desc()))?;
        for name in delegate_files {
            match fchownat(
                &self.dir,
                name.as_str(),
                uid,
                gid,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => bail!(
                    "giving {} away: {}",
                    self.path.join(name).display(),
                    e.desc()
                ),
            }
        }
        Ok(())
    }

    /// Kills every process in this cgroup and below (v2's cgroup.kill, Linux 5.14); false
    /// where that is not available.
    pub fn kill_all(&self) -> bool {
        self.version == Version::V2 && self.try_write("cgroup.kill", "1").is_ok()
    }

    /// Removes this cgroup's children, deepest first, waiting up to `patience` for processes
    /// that are still ending to leave them.
    pub fn remove_children(&self, patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        for child in self.children()? {
            child.remove_waiting(deadline)?;
        }
        Ok(())
    }

    /// Removes this cgroup with everything below it, deepest first, waiting up to `patience`
    /// for processes still ending to leave. A cgroup already gone counts as removed.
    pub fn remove(&self, patience: Duration) -> Result<()> {
        self.remove_waiting(Instant::now() + patience)
    }

    fn remove_waiting(&self, deadline: Instant) -> Result<()> {
        for child in self.children()? {
            child.remove_waiting(deadline)?;
        }
        let Some((parent, name)) = &self.parent else {
            bail!("{} is the root of its hierarchy", self.path.display());
        };
        loop {
            match unlinkat(parent, name.as_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => return Ok(()),
                // Processes still in it (ending ones included), or a child that appeared.
                Err(Errno::EBUSY) | Err(Errno::ENOTEMPTY) if Instant::now() < deadline => {
                    for child in self.children().unwrap_or_default() {
                        child.remove_waiting(deadline)?;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => bail!("removing cgroup {}: {}", self.path.display(), e.desc()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A directory under /tmp standing in for a cgroup v2 mount, removed on drop.
    struct FakeTree(PathBuf);

    impl FakeTree {
        fn new(name: &str) -> FakeTree {
            let path = std::env::temp_dir()
                .join(format!("contain-cgroup-test.{}.{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir(&path).unwrap();
            FakeTree(path)
        }

        fn mount(&self, version: Version, controllers: &[&str]) -> Mount {
            Mount {
                path: self.0.clone(),
                version,
                controllers: controllers.iter().map(|c| c.to_string()).collect(),
            }
        }

        /// A cgroup directory with interface files, as the kernel would show them.
        fn cgroup(&self, relative: &str, files: &[(&str, &str)]) -> PathBuf {
            let dir = self.0.join(relative);
            fs::create_dir_all(&dir).unwrap();
            for (name, text) in files {
                fs::write(dir.join(name), text).unwrap();
            }
            dir
        }
    }

    impl Drop for FakeTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn mountinfo_names_the_hierarchies_of_a_hybrid_host() {
        let text = "\
25 20 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
30 20 0:26 /sub /mnt/bound\\040here rw,relatime - cgroup cgroup rw,memory
31 20 0:23 / /mnt/odd\\040place rw - cgroup2 cgroup2 rw
";
        let mounts = parse_mountinfo(text);
        let v2: Vec<&Path> = mounts
            .iter()
            .filter(|m| m.version == Version::V2)
            .map(|m| m.path.as_path())
            .collect();
        assert_eq!(
            v2,
            [
                Path::new("/sys/fs/cgroup/unified"),
                Path::new("/mnt/odd place")
            ]
        );
        let v1: Vec<(String, Vec<String>)> = mounts
            .iter()
            .filter(|m| m.version == Version::V1)
            .map(|m| (m.path.display().to_string(), m.controllers.clone()))
            .collect();
        assert_eq!(
            v1,
            [
                ("/sys/fs/cgroup/systemd".to_string(), vec![]),
                (
                    "/sys/fs/cgroup/cpu,cpuacct".to_string(),
                    vec!["cpu".to_string(), "cpuacct".to_string()]
                ),
                (
                    "/sys/fs/cgroup/memory".to_string(),
                    vec!["memory".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn the_unified_path_is_the_0_line() {
        let text = "9:name=systemd:/\n4:memory:/a/b\n0::/user.slice/x.scope\n";
        assert_eq!(
            unified_path_in(text).as_deref(),
            Some("/user.slice/x.scope")
        );
        assert_eq!(unified_path_in("4:memory:/a\n"), None);
    }

    #[test]
    fn sizes_and_cpus_parse_as_podman_takes_them() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("64kb"), Ok(64 << 10));
        for bad in ["", "m", "1.5g", "-1", "12x", "0", "99999999999t"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(
            CpuQuota::of_cpus(1.5),
            Some(CpuQuota {
                quota: 150_000,
                period: 100_000
            })
        );
        assert_eq!(CpuQuota::of_cpus(0.001), None);
        assert_eq!(CpuQuota::of_cpus(f64::NAN), None);
    }

    #[test]
    fn limits_go_into_the_v2_files() {
        let tree = FakeTree::new("v2-limits");
        let files = [
            ("cpu.max", "max 100000\n"),
            ("memory.max", "max\n"),
            ("pids.max", "max\n"),
        ];
        tree.cgroup("box", &files);
        let cgroup = Cgroup::open(&tree.mount(Version::V2, &[]), "/box").unwrap();
        let limits = Resources {
            memory: Some(256 << 20),
            pids: Some(100),
            cpu: CpuQuota::of_cpus(0.5),
        };
        assert_eq!(limits.controllers(), ["cpu", "memory", "pids"]);
        cgroup.apply(&limits).unwrap();
        let read = |f: &str| fs::read_to_string(tree.0.join("box").join(f)).unwrap();
        assert_eq!(read("memory.max"), "268435456");
        assert_eq!(read("pids.max"), "100");
        assert_eq!(read("cpu.max"), "50000 100000");

        // Only what is set is written.
        let tree = FakeTree::new("v2-some");
        tree.cgroup("box", &[("pids.max", "max\n")]);
        let cgroup = Cgroup::open(&tree.mount(Version::V2, &[]), "box").unwrap();
        let pids_only = Resources {
            pids: Some(7),
            ..Resources::default()
        };
        cgroup.apply(&pids_only).unwrap();
        assert_eq!(
            fs::read_to_string(tree.0.join("box/pids.max")).unwrap(),
            "7"
        );
        // A controller the cgroup lacks: its file is missing, and the error names it.
        let memory = Resources {
            memory: Some(1 << 20),
            ..Resources::default()
        };
        let err = cgroup.apply(&memory).unwrap_err().to_string();
        assert!(err.contains("box/memory.max"), "{err}");
    }

    #[test]
    fn limits_go_into_the_v1_files_of_each_hierarchy() {
        let limits = Resources {
            memory: Some(1 << 30),
            pids: Some(50),
            cpu: CpuQuota::of_cpus(2.0),
        };
        let memory = FakeTree::new("v1-memory");
        memory.cgroup("c", &[("memory.limit_in_bytes", "")]);
        Cgroup::open(&memory.mount(Version::V1, &["memory"]), "c")
            .unwrap()
            .apply(&limits)
            .unwrap();
        assert_eq!(
            fs::read_to_string(memory.0.join("c/memory.limit_in_bytes")).unwrap(),
            "1073741824"
        );
        let cpu = FakeTree::new("v1-cpu");
        cpu.cgroup("c", &[("cpu.cfs_quota_us", ""), ("cpu.cfs_period_us", "")]);
        Cgroup::open(&cpu.mount(Version::V1, &["cpu", "cpuacct"]), "c")
            .unwrap()
            .apply(&limits)
            .unwrap();
        assert_eq!(
            fs::read_to_string(cpu.0.join("c/cpu.cfs_quota_us")).unwrap(),
            "200000"
        );
        assert_eq!(
            fs::read_to_string(cpu.0.join("c/cpu.cfs_period_us")).unwrap(),
            "100000"
        );
        // The pids hierarchy is elsewhere: nothing for it here.
        assert!(!cpu.0.join("c/pids.max").exists());
    }

    #[test]
    fn controllers_are_enabled_once_and_read_back() {
        let tree = FakeTree::new("enable");
        tree.cgroup(
            "",
            &[
                ("cgroup.controllers", "cpu io memory pids\n"),
                ("cgroup.subtree_control", "memory\n"),
            ],
        );
        let root = Cgroup::open(&tree.mount(Version::V2, &[]), "/").unwrap();
        assert_eq!(
            root.available_controllers().unwrap(),
            ["cpu", "io", "memory", "pids"]
        );
        root.enable_controllers(&["memory", "pids"]).unwrap();
        // A file stands in for the kernel: it holds what was written last.
        assert_eq!(
            fs::read_to_string(tree.0.join("cgroup.subtree_control")).unwrap(),
            "+pids"
        );
    }

    #[test]
    fn processes_and_population_are_read_from_the_tree() {
        let tree = FakeTree::new("procs");
        tree.cgroup("a", &[("cgroup.procs", "")]);
        tree.cgroup("a/b", &[("cgroup.procs", "12\n34\n")]);
        let mount = tree.mount(Version::V1, &[]);
        let a = Cgroup::open(&mount, "a").unwrap();
        assert!(a.processes().unwrap().is_empty());
        assert!(a.is_populated());
        let b = Cgroup::open(&mount, "a/b").unwrap();
        assert_eq!(b.processes().unwrap(), [12, 34]);
        b.add_process(56).unwrap();
        assert_eq!(
            fs::read_to_string(tree.0.join("a/b/cgroup.procs")).unwrap(),
            "56"
        );
        // v2 answers from cgroup.events.
        tree.cgroup("e", &[("cgroup.events", "populated 0\nfrozen 0\n")]);
        assert!(!Cgroup::open(&tree.mount(Version::V2, &[]), "e")
            .unwrap()
            .is_populated());
    }

    #[test]
    fn children_are_created_and_removed_deepest_first() {
        let tree = FakeTree::new("remove");
        let mount = tree.mount(Version::V2, &[]);
        let root = Cgroup::open(&mount, "").unwrap();
        let top = root.create_child("top").unwrap();
        assert_eq!(top.path(), tree.0.join("top"));
        assert!(root.create_child("top").is_err(), "created twice");
        for name in ["../x", "a/b", "", ".", ".."] {
            assert!(top.create_child(name).is_err(), "{name:?}");
        }
        let inner = top.create_child("init.scope").unwrap();
        inner.create_child("deeper").unwrap();
        top.create_child("system.slice").unwrap();
        top.remove_children(Duration::ZERO).unwrap();
        assert!(tree.0.join("top").is_dir());
        assert_eq!(fs::read_dir(tree.0.join("top")).unwrap().count(), 0);
        top.create_child("again")
            .unwrap()
            .create_child("x")
            .unwrap();
        top.remove(Duration::ZERO).unwrap();
        assert!(!tree.0.join("top").exists());
        // Gone already: nothing to do.
        Cgroup::open(&mount, "")
            .unwrap()
            .create_child("gone")
            .unwrap()
            .remove(Duration::ZERO)
            .unwrap();
        assert!(Cgroup::open(&mount, "")
            .unwrap()
            .remove(Duration::ZERO)
            .is_err());
    }

    #[test]
    fn a_path_is_created_with_its_missing_parents() {
        let tree = FakeTree::new("create-all");
        tree.cgroup("user.slice", &[]);
        let mount = tree.mount(Version::V2, &[]);
        let made = Cgroup::create_all(&mount, "/user.slice/runtime/box").unwrap();
        assert_eq!(made.path(), tree.0.join("user.slice/runtime/box"));
        assert!(tree.0.join("user.slice/runtime/box").is_dir());
        // Again: all there, opened.
        Cgroup::create_all(&mount, "user.slice/runtime/box").unwrap();
        assert!(Cgroup::create_all(&mount, "user.slice/../x").is_err());
    }

    #[test]
    fn links_in_the_tree_are_not_followed() {
        let tree = FakeTree::new("links");
        let outside = FakeTree::new("links-outside");
        fs::write(outside.0.join("cgroup.procs"), "").unwrap();
        std::os::unix::fs::symlink(&outside.0, tree.0.join("link")).unwrap();
        let mount = tree.mount(Version::V2, &[]);
        assert!(Cgroup::open(&mount, "link").is_err());
        tree.cgroup("real", &[]);
        std::os::unix::fs::symlink(
            outside.0.join("cgroup.procs"),
            tree.0.join("real/cgroup.procs"),
        )
        .unwrap();
        let real = Cgroup::open(&mount, "real").unwrap();
        assert!(real.add_process(1).is_err());
        assert_eq!(
            fs::read_to_string(outside.0.join("cgroup.procs")).unwrap(),
            ""
        );
    }

    #[test]
    fn delegation_gives_the_directory_and_the_listed_files() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let tree = FakeTree::new("delegate");
        tree.cgroup(
            "d",
            &[
                ("cgroup.procs", ""),
                ("cgroup.subtree_control", ""),
                ("memory.max", ""),
            ],
        );
        let d = Cgroup::open(&tree.mount(Version::V2, &[]), "d").unwrap();
        assert!(d.is_delegated_to(0));
        let files = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"].map(String::from);
        d.delegate(4321, 8765, &files).unwrap();
        assert!(d.is_delegated_to(4321));
        assert_eq!(d.owners().unwrap(), ((4321, 8765), (4321, 8765)));
        use std::os::unix::fs::MetadataExt;
        let uid = |f: &str| fs::metadata(tree.0.join("d").join(f)).unwrap().uid();
        assert_eq!(uid("cgroup.subtree_control"), 4321);
        // Limits stay the delegator's.
        assert_eq!(uid("memory.max"), 0);
    }
}
