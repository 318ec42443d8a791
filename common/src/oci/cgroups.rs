//! config.json's `linux.cgroupsPath` and `linux.resources`: the container's process is placed
//! in that cgroup, made in every hierarchy of the host (each cgroup v1 controller, or the one
//! cgroup v2 tree), and the limits written there, before it is let go.
//!
//! Where the caller may not write a cgroup (a user without a delegated subtree; rootless podman
//! on a cgroup v1 host, which gives no cgroupsPath at all) nothing is done, as crun does; for
//! real root a cgroup that cannot be made is an error. Device rules are written on cgroup v1;
//! cgroup v2 needs an eBPF program for them, which this runtime does not load.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxResources};
use std::path::{Path, PathBuf};

/// A mounted hierarchy: where it is, and whether it is cgroup v2.
struct Hierarchy {
    mount: PathBuf,
    v2: bool,
    /// The v1 controllers it holds (`cpu`, `memory`, `name=systemd`, ...).
    controllers: Vec<String>,
}

/// The host's cgroup hierarchies: the v2 tree alone when /sys/fs/cgroup is cgroup2, else
/// every v1 hierarchy (a hybrid host's v2 tree holds no controller a container is limited by).
fn hierarchies() -> Vec<Hierarchy> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(mount), Some(fstype), Some(options)) = (left.get(4), right.first(), right.get(2))
        else {
            continue;
        };
        let mount = PathBuf::from(mount);
        match *fstype {
            "cgroup2" if mount == Path::new("/sys/fs/cgroup") => {
                return vec![Hierarchy {
                    mount,
                    v2: true,
                    controllers: Vec::new(),
                }]
            }
            "cgroup" => found.push(Hierarchy {
                mount,
                v2: false,
                controllers: options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("release_agent"))
                    .map(str::to_string)
                    .collect(),
            }),
            _ => {}
        }
    }
    found
}

/// The caller's own cgroup in a hierarchy (from /proc/self/cgroup), for a relative path.
fn own_cgroup(h: &Hierarchy) -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(names), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let matches = if h.v2 {
            names.is_empty()
        } else {
            names
                .split(',')
                .any(|n| h.controllers.iter().any(|c| c == n))
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

/// Places `pid` in the cgroup `path` of every hierarchy and applies `resources`; returns the
/// directories made (for `delete` to remove). Nothing when there is no path, or when the
/// caller may not make cgroups and is not real root.
pub fn join(
    pid: i32,
    path: Option<&Path>,
    resources: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<Vec<PathBuf>> {
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(Vec::new());
    };
    if path.to_string_lossy().contains(':') {
        // systemd's slice:prefix:name form needs systemd's D-Bus API, which is not used here.
        super::log::debug("linux.cgroupsPath in systemd's form: cgroups left to the caller");
        return Ok(Vec::new());
    }
    let real_root = nix::unistd::geteuid().is_root()
        && crate::idmap::is_initial(&crate::idmap::own_namespace(crate::idmap::IdKind::User));
    let mut made = Vec::new();
    for h in hierarchies() {
        let relative = path.strip_prefix("/").unwrap_or(path);
        let base = if path.is_absolute() {
            PathBuf::new()
        } else {
            own_cgroup(&h)
                .strip_prefix("/")
                .unwrap_or(Path::new(""))
                .to_path_buf()
        };
        let dir = h.mount.join(base).join(relative);
        let joined = make(&h, &dir).and_then(|()| {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string())
                .with_context(|| format!("moving the process into {}", dir.display()))
        });
        match joined {
            Ok(()) => made.push(dir.clone()),
            Err(e) if !real_root => {
                super::log::debug(&format!("cgroups skipped: {}", crate::errors::one_line(&e)));
                return Ok(made);
            }
            Err(e) => return Err(e).context("linux.cgroupsPath"),
        }
        if let Some(resources) = resources {
            apply(&h, &dir, resources).context("linux.resources")?;
        }
        if !h.v2 && h.controllers.iter().any(|c| c == "devices") && resources.is_some() {
            allow_default_devices(&dir, devices).context("linux.resources.devices")?;
        }
    }
    Ok(made)
}

/// Moves `pid` into the cgroups `join` made for a container (an exec'd process joins its
/// container's).
pub fn join_existing(pid: i32, dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving the process into the cgroup {}", dir.display()))?;
    }
    Ok(())
}

/// Makes `dir` and its missing parents; in the cpuset hierarchy each new directory gets its
/// parent's CPUs and memory nodes, without which no process may join it.
fn make(h: &Hierarchy, dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| *d != h.mount && !d.exists())
        .collect();
    for d in missing.into_iter().rev() {
        if h.v2 {
            // A v2 cgroup has the controllers its parent passes down: ask for those the
            // limits use (each alone, as one the parent lacks would refuse them all).
            let parent = d.parent().unwrap_or(&h.mount);
            for controller in ["+cpu", "+cpuset", "+memory", "+pids", "+io"] {
                let _ = std::fs::write(parent.join("cgroup.subtree_control"), controller);
            }
        }
        std::fs::create_dir(d).with_context(|| format!("creating {}", d.display()))?;
        if !h.v2 && h.controllers.iter().any(|c| c == "cpuset") {
            let parent = d.parent().unwrap_or(&h.mount);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
                let _ = std::fs::write(d.join(file), value.trim());
            }
        }
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: impl ToString) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value.to_string()).with_context(|| format!("writing {}", path.display()))
}

/// The limits config.json asks for, in the files of one hierarchy.
fn apply(h: &Hierarchy, dir: &Path, r: &LinuxResources) -> Result<()> {
    let has = |c: &str| h.v2 || h.controllers.iter().any(|x| x == c);
    let max = |v: i64| {
        if v < 0 {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    if let Some(memory) = r.memory() {
        if h.v2 {
            if let Some(limit) = memory.limit() {
                write(dir, "memory.max", max(limit))?;
            }
            if let Some(low) = memory.reservation() {
                write(dir, "memory.low", max(low))?;
            }
            if let (Some(swap), Some(limit)) = (memory.swap(), memory.limit()) {
                // v1's swap is memory and swap together; v2's is swap alone.
                let swap_only = if swap < 0 { -1 } else { (swap - limit).max(0) };
                if dir.join("memory.swap.max").exists() {
                    write(dir, "memory.swap.max", max(swap_only))?;
                }
            }
        } else if has("memory") {
            if let Some(limit) = memory.limit() {
                write(dir, "memory.limit_in_bytes", limit)?;
            }
            if let Some(low) = memory.reservation() {
                write(dir, "memory.soft_limit_in_bytes", low)?;
            }
            if let Some(swap) = memory.swap() {
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    write(dir, "memory.memsw.limit_in_bytes", swap)?;
                }
            }
            if let Some(swappiness) = memory.swappiness() {
                write(dir, "memory.swappiness", swappiness)?;
            }
        }
    }
    if let Some(pids) = r.pids() {
        if has("pids") {
            let limit = if pids.limit() <= 0 { -1 } else { pids.limit() };
            write(dir, "pids.max", max(limit))?;
        }
    }
    if let Some(cpu) = r.cpu() {
        if h.v2 {
            if let Some(shares) = cpu.shares().filter(|&s| s > 0) {
                // runc's conversion of v1 shares (2..262144) to v2 weight (1..10000).
                let weight = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
                write(dir, "cpu.weight", weight)?;
            }
            if cpu.quota().is_some() || cpu.period().is_some() {
                let quota = cpu
                    .quota()
                    .filter(|&q| q > 0)
                    .map_or("max".into(), |q| q.to_string());
                write(
                    dir,
                    "cpu.max",
                    format!("{quota} {}", cpu.period().unwrap_or(100_000)),
                )?;
            }
        } else if has("cpu") {
            if let Some(shares) = cpu.shares().filter(|&s| s > 0) {
                write(dir, "cpu.shares", shares)?;
            }
            if let Some(period) = cpu.period().filter(|&p| p > 0) {
                write(dir, "cpu.cfs_period_us", period)?;
            }
            if let Some(quota) = cpu.quota().filter(|&q| q != 0) {
                write(dir, "cpu.cfs_quota_us", quota)?;
            }
        }
        if has("cpuset") {
            if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
                write(dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
                write(dir, "cpuset.mems", mems)?;
            }
        }
    }
    if !h.v2 && has("devices") {
        for rule in r.devices().iter().flatten() {
            let typ = rule
                .typ()
                .map_or("a".to_string(), |t| t.as_str().to_string());
            let number =
                |n: Option<i64>| n.filter(|&n| n >= 0).map_or("*".into(), |n| n.to_string());
            let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
            let line = match typ.as_str() {
                "a" => "a".to_string(),
                _ => format!(
                    "{typ} {}:{} {access}",
                    number(rule.major()),
                    number(rule.minor())
                ),
            };
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(dir, file, &line).map_err(|e| anyhow!("device rule '{line}': {e:#}"))?;
        }
    }
    Ok(())
}

/// Device rules every container gets after config.json's own, as runc adds them: the
/// default devices (null, zero, full, random, urandom, tty, console, ptmx, the pty slaves),
/// mknod of anything, and the devices config.json lists.
const DEFAULT_DEVICE_RULES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

fn allow_default_devices(dir: &Path, devices: &[LinuxDevice]) -> Result<()> {
    for rule in DEFAULT_DEVICE_RULES {
        write(dir, "devices.allow", rule)?;
    }
    for device in devices {
        let rule = format!(
            "{} {}:{} rwm",
            device.typ().as_str(),
            device.major(),
            device.minor()
        );
        write(dir, "devices.allow", rule)?;
    }
    Ok(())
}

/// Removes the cgroups `join` made (the container's own directories; their parents may be
/// shared with others and stay). A process that has ended but not been reaped yet still
/// counts as a member (EBUSY): it is waited for a moment, then the cgroup is left, with a
/// warning, rather than failing the delete of a container that is gone.
pub fn remove(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        let mut tries = 0;
        loop {
            match std::fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    super::log::warn(&format!("leaving the cgroup {}: {e}", dir.display()));
                    break;
                }
                Err(e) => bail!("removing the cgroup {}: {e}", dir.display()),
            }
        }
    }
    Ok(())
}
