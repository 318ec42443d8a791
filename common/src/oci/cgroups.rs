//! The container's cgroups: `linux.cgroupsPath` made in each hierarchy, `linux.resources`
//! written there, the process moved in before it runs, and what the engines do later through
//! them: `ps` and `kill --all` (every process of the container, also once its first one has
//! ended), `pause`/`resume` (the freezer), `update` and their removal on `delete`.
//!
//! Which hierarchies: where any cgroup v1 hierarchy has controllers (a v1 or hybrid host), the
//! container gets a cgroup in every v1 hierarchy, as runc does; otherwise in the unified
//! (v2) one, with the controllers its resources need enabled on the way down. A cgroupsPath
//! that starts with `/` is below each hierarchy's root, a relative one below the runtime's
//! own cgroup there. With `--systemd-cgroup` the path is systemd's `slice:prefix:name` (see
//! [`systemd_unit`]): systemd makes the scope over D-Bus with the process in it
//! ([`crate::systemd_scope`]), and its cgroup is then used as any other. An empty
//! cgroupsPath, or a runtime without the right to write the hierarchies (rootless on a v1
//! host), gets no cgroup, as with crun: resources are then
//! left unapplied with a warning, and pause, update and the like say why they cannot work.
//!
//! Every cgroup is reached through [`crate::cgroup`], one name at a time without following
//! links, which also lets the tests run this on plain directory trees.

use super::state::{ContainerDir, Saved, Status, SystemdScope};
use crate::cgroup::{self, Cgroup, Mount, Version};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One value to write: `file` of the `controller`'s cgroup (v1) or of the cgroup (v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The kernel's name of the controller, or "" for a v2 core file (cgroup.*).
    pub controller: String,
    pub file: String,
    pub value: String,
}

fn setting(controller: &str, file: impl Into<String>, value: impl ToString) -> Setting {
    Setting {
        controller: controller.to_string(),
        file: file.into(),
        value: value.to_string(),
    }
}

/// A limit where -1 (or, for some, 0) means none: "max" in v2, -1 in v1.
fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".into()
    } else {
        value.to_string()
    }
}

/// cpu.shares (2..262144) as v2's cpu.weight (1..10000), the conversion runc and crun use.
pub fn weight_of_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) as v2's io.weight (1..10000).
pub fn io_weight_of_blkio(weight: u16) -> u64 {
    let weight = u64::from(weight).clamp(10, 1000);
    1 + ((weight - 10) * 9999) / 990
}

/// The value lines of linux.resources, for the hierarchy kind `version`. Fails on what that
/// kind cannot take (unified on v1).
pub fn settings(
    resources: &LinuxResources,
    nodes: &[LinuxDevice],
    version: Version,
) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    let v1 = version == Version::V1;
    if let Some(memory) = resources.memory() {
        if let Some(limit) = memory.limit() {
            if v1 {
                out.push(setting("memory", "memory.limit_in_bytes", limit));
            } else {
                out.push(setting("memory", "memory.max", v2_limit(limit)));
            }
        }
        if let Some(reservation) = memory.reservation() {
            if v1 {
                out.push(setting("memory", "memory.soft_limit_in_bytes", reservation));
            } else {
                out.push(setting("memory", "memory.low", v2_limit(reservation)));
            }
        }
        if let Some(swap) = memory.swap() {
            if v1 {
                out.push(setting("memory", "memory.memsw.limit_in_bytes", swap));
            } else {
                // OCI's swap is memory plus swap; v2's swap.max is the swap alone.
                let swap_alone = match memory.limit() {
                    Some(limit) if swap > 0 && limit > 0 => (swap - limit).max(0).to_string(),
                    _ => v2_limit(swap),
                };
                out.push(setting("memory", "memory.swap.max", swap_alone));
            }
        }
        if let Some(tcp) = memory.kernel_tcp() {
            // v1 only: v2 accounts socket memory with the rest, under memory.max.
            if v1 {
                out.push(setting("memory", "memory.kmem.tcp.limit_in_bytes", tcp));
            }
        }
        if let Some(swappiness) = memory.swappiness() {
            if v1 && swappiness <= 100 {
                out.push(setting("memory", "memory.swappiness", swappiness));
            } else if swappiness > 100 {
                bail!("linux.resources.memory.swappiness: {swappiness} is above 100");
            }
        }
        if memory.disable_oom_killer() == Some(true) {
            if v1 {
                out.push(setting("memory", "memory.oom_control", 1));
            } else {
                bail!("linux.resources.memory.disableOOMKiller: cgroup v2 has no such setting");
            }
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            if v1 {
                out.push(setting("cpu", "cpu.shares", shares));
            } else {
                out.push(setting("cpu", "cpu.weight", weight_of_shares(shares)));
            }
        }
        let period = cpu.period().filter(|p| *p > 0);
        let quota = cpu.quota().filter(|q| *q != 0);
        if v1 {
            // The period first: the kernel checks the quota against it.
            if let Some(period) = period {
                out.push(setting("cpu", "cpu.cfs_period_us", period));
            }
            if let Some(quota) = quota {
                out.push(setting("cpu", "cpu.cfs_quota_us", quota));
            }
        } else if quota.is_some() || period.is_some() {
            let quota = quota.map_or("max".to_string(), v2_limit);
            out.push(setting(
                "cpu",
                "cpu.max",
                format!("{quota} {}", period.unwrap_or(100_000)),
            ));
        }
        if let Some(period) = cpu.realtime_period().filter(|p| *p > 0) {
            if !v1 {
                bail!("linux.resources.cpu.realtimePeriod: cgroup v2 has no realtime settings");
            }
            out.push(setting("cpu", "cpu.rt_period_us", period));
        }
        if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
            if !v1 {
                bail!("linux.resources.cpu.realtimeRuntime: cgroup v2 has no realtime settings");
            }
            out.push(setting("cpu", "cpu.rt_runtime_us", runtime));
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            out.push(setting("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            out.push(setting("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(pids) = resources.pids() {
        let limit = if pids.limit() > 0 {
            pids.limit().to_string()
        } else {
            "max".to_string()
        };
        out.push(setting("pids", "pids.max", limit));
    }
    if let Some(io) = resources.block_io() {
        let (controller, weight_file) = if v1 {
            ("blkio", "blkio.weight")
        } else {
            ("io", "io.weight")
        };
        if let Some(weight) = io.weight().filter(|w| *w > 0) {
            let value = if v1 {
                u64::from(weight)
            } else {
                io_weight_of_blkio(weight)
            };
            let value = if v1 {
                value.to_string()
            } else {
                format!("default {value}")
            };
            out.push(setting(controller, weight_file, value));
        }
        if let Some(leaf) = io.leaf_weight().filter(|w| *w > 0) {
            if !v1 {
                bail!("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight");
            }
            out.push(setting("blkio", "blkio.leaf_weight", leaf));
        }
        for device in io.weight_device().iter().flatten() {
            if let Some(weight) = device.weight() {
                let value = if v1 {
                    u64::from(weight)
                } else {
                    io_weight_of_blkio(weight)
                };
                out.push(setting(
                    controller,
                    weight_file,
                    format!("{}:{} {value}", device.major(), device.minor()),
                ));
            }
        }
        let throttles = [
            (io.throttle_read_bps_device(), "read_bps_device", "rbps"),
            (io.throttle_write_bps_device(), "write_bps_device", "wbps"),
            (io.throttle_read_iops_device(), "read_iops_device", "riops"),
            (
                io.throttle_write_iops_device(),
                "write_iops_device",
                "wiops",
            ),
        ];
        for (devices, v1_name, v2_key) in throttles {
            for device in devices.iter().flatten() {
                let dev = format!("{}:{}", device.major(), device.minor());
                if v1 {
                    out.push(setting(
                        "blkio",
                        format!("blkio.throttle.{v1_name}"),
                        format!("{dev} {}", device.rate()),
                    ));
                } else {
                    let rate = if device.rate() == 0 {
                        "max".to_string()
                    } else {
                        device.rate().to_string()
                    };
                    out.push(setting("io", "io.max", format!("{dev} {v2_key}={rate}")));
                }
            }
        }
    }
    for limit in resources.hugepage_limits().iter().flatten() {
        let size = limit.page_size();
        if v1 {
            out.push(setting(
                "hugetlb",
                format!("hugetlb.{size}.limit_in_bytes"),
                limit.limit(),
            ));
        } else {
            out.push(setting(
                "hugetlb",
                format!("hugetlb.{size}.max"),
                v2_limit(limit.limit()),
            ));
        }
    }
    if let Some(unified) = resources.unified().as_ref().filter(|u| !u.is_empty()) {
        if v1 {
            bail!("linux.resources.unified: this host's cgroups are v1 (unified needs cgroup v2)");
        }
        let mut files: Vec<_> = unified.iter().collect();
        files.sort();
        for (file, value) in files {
            if file.contains('/') || file.starts_with('.') || !file.contains('.') {
                bail!(
                    "linux.resources.unified: {:?} is not a cgroup file",
                    crate::errors::printable(file)
                );
            }
            let controller = file.split('.').next().unwrap_or("");
            let controller = if controller == "cgroup" {
                ""
            } else {
                controller
            };
            out.push(setting(controller, file.as_str(), value));
        }
    }
    if v1 {
        out.extend(device_settings(
            resources.devices().as_deref().unwrap_or(&[]),
            nodes,
        ));
    }
    Ok(out)
}

/// What every container may use whatever its rules say, as runc allows them: mknod of any
/// node, and the devices the runtime itself puts in /dev (null, zero, full, random, urandom,
/// tty, console, ptmx and the pty slaves, tun).
const ALWAYS_ALLOWED: [&str; 12] = [
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
    "c 10:200 rwm",
];

/// One devices-cgroup rule as v1's devices.allow/deny take it: `TYPE MAJOR:MINOR ACCESS`.
fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let kind = match rule.typ() {
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::P) => 'p',
        Some(LinuxDeviceType::A) | None => 'a',
    };
    let number = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".into(), |n| n.to_string());
    let access = rule.access().as_deref().unwrap_or("rwm");
    format!(
        "{kind} {}:{} {access}",
        number(rule.major()),
        number(rule.minor())
    )
}

/// linux.resources.devices for v1's devices controller: the rules in order, then
/// [`ALWAYS_ALLOWED`] and the nodes linux.devices makes. Nothing when the config lists no
/// rule (everything stays allowed, as the parent has it).
fn device_settings(rules: &[LinuxDeviceCgroup], nodes: &[LinuxDevice]) -> Vec<Setting> {
    if rules.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Setting> = rules
        .iter()
        .map(|rule| {
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            setting("devices", file, device_rule(rule))
        })
        .collect();
    out.extend(
        ALWAYS_ALLOWED
            .iter()
            .map(|rule| setting("devices", "devices.allow", rule)),
    );
    out.extend(nodes.iter().map(|node| {
        let kind = match node.typ() {
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => 'p',
            _ => 'c',
        };
        let rule = format!("{kind} {}:{} rwm", node.major(), node.minor());
        setting("devices", "devices.allow", rule)
    }));
    out
}

/// True if the config asks for any limit.
fn has_limits(resources: &LinuxResources) -> bool {
    resources.memory().is_some()
        || resources.cpu().is_some()
        || resources.pids().is_some()
        || resources.block_io().is_some()
        || resources
            .hugepage_limits()
            .as_ref()
            .is_some_and(|h| !h.is_empty())
        || resources.unified().as_ref().is_some_and(|u| !u.is_empty())
}

/// The hierarchies a container's cgroups are made in, from the mounted ones: every v1
/// hierarchy where one has controllers, else the unified one. None where no cgroup file
/// system is mounted.
pub fn hierarchies(mounts: Vec<Mount>) -> Option<(Version, Vec<Mount>)> {
    let mut v1: Vec<Mount> = Vec::new();
    for mount in mounts.iter().filter(|m| m.version == Version::V1) {
        // The same hierarchy mounted twice is used once.
        let same = |m: &Mount| m.controllers == mount.controllers && m.path != mount.path;
        if !mount.controllers.is_empty() && v1.iter().any(same) {
            continue;
        }
        v1.push(mount.clone());
    }
    if v1.iter().any(|m| !m.controllers.is_empty()) {
        return Some((Version::V1, v1));
    }
    let unified = mounts.into_iter().find(|m| m.version == Version::V2)?;
    Some((Version::V2, vec![unified]))
}

/// A unit named by systemd's `slice:prefix:name` cgroupsPath: the slice it goes in and its
/// own name, `prefix-name.scope` (or `name` itself where it already names a unit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemdUnit {
    pub slice: String,
    pub unit: String,
}

/// Reads systemd's `slice:prefix:name` cgroupsPath. An empty slice is `system.slice`, where
/// systemd's own manager puts a scope without one.
pub fn systemd_unit(cgroups_path: &str) -> Result<SystemdUnit> {
    let parts: Vec<&str> = cgroups_path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        bail!(
            "linux.cgroupsPath: {:?} is not systemd's slice:prefix:name (--systemd-cgroup)",
            crate::errors::printable(cgroups_path)
        );
    };
    let unit_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    };
    if !unit_ok(slice) || !unit_ok(prefix) || !unit_ok(name) || name.is_empty() {
        bail!(
            "linux.cgroupsPath: {:?} holds characters no systemd unit name has",
            crate::errors::printable(cgroups_path)
        );
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        bail!("linux.cgroupsPath: the slice {slice:?} does not end in .slice");
    };
    if stem != "-" && (stem.starts_with('-') || stem.ends_with('-') || stem.contains("--")) {
        bail!("linux.cgroupsPath: {slice:?} is not a valid slice name");
    }
    let unit = if name.ends_with(".slice") || name.ends_with(".scope") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(SystemdUnit {
        slice: slice.to_string(),
        unit,
    })
}

/// The annotations by which an engine sets a property of the container's scope, as with runc
/// and crun: `org.systemd.property.NAME` with the value in GVariant's text form.
const SYSTEMD_PROPERTY_ANNOTATION: &str = "org.systemd.property.";

/// What systemd is asked to make for the container: the scope `unit` in its slice, with
/// Delegate (the cgroup is the runtime's to write below systemd; an annotation
/// `org.systemd.property.Delegate` decides otherwise), accounting for each kind of resource
/// the config limits, no default dependencies (a container's scope must not hold up shutdown
/// ordering), and the engine's own properties from the annotations.
pub fn scope_request(
    unit: &SystemdUnit,
    id: &str,
    resources: &LinuxResources,
    annotations: &std::collections::HashMap<String, String>,
    user_manager: bool,
) -> Result<crate::systemd_scope::Request> {
    use crate::systemd_scope::{parse_value, Value};
    if !unit.unit.ends_with(".scope") {
        bail!(
            "linux.cgroupsPath: {} is not a scope: this runtime makes the container a scope of \
             systemd's, never a slice",
            unit.unit
        );
    }
    let mut properties = vec![
        (
            "Description".to_string(),
            Value::Str(format!("contain-oci container {id}")),
        ),
        ("Slice".to_string(), Value::Str(unit.slice.clone())),
        ("DefaultDependencies".to_string(), Value::Bool(false)),
        ("Delegate".to_string(), Value::Bool(true)),
    ];
    let accounting = [
        ("CPUAccounting", resources.cpu().is_some()),
        ("MemoryAccounting", resources.memory().is_some()),
        ("IOAccounting", resources.block_io().is_some()),
        ("TasksAccounting", resources.pids().is_some()),
    ];
    for (name, wanted) in accounting {
        if wanted {
            properties.push((name.to_string(), Value::Bool(true)));
        }
    }
    let mut named: Vec<(&String, &String)> = annotations
        .iter()
        .filter(|(key, _)| key.starts_with(SYSTEMD_PROPERTY_ANNOTATION))
        .collect();
    named.sort();
    for (key, text) in named {
        let name = &key[SYSTEMD_PROPERTY_ANNOTATION.len()..];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            bail!("annotations: {key:?} names no systemd property");
        }
        if matches!(name, "PIDs" | "Slice") {
            bail!("annotations: {key} is the runtime's to set");
        }
        let value = parse_value(text).with_context(|| format!("annotations: {key}"))?;
        properties.retain(|(have, _)| have != name);
        properties.push((name.to_string(), value));
    }
    Ok(crate::systemd_scope::Request {
        unit: unit.unit.clone(),
        user_manager,
        properties,
    })
}

/// The cgroup path of process `pid` in the hierarchy systemd keeps its units in, from
/// /proc/PID/cgroup: v1's name=systemd where the runtime uses the v1 hierarchies (a legacy or
/// hybrid systemd), else the v2 tree. A systemd on the unified tree may run where the kernel
/// still has a name=systemd hierarchy (in a container on a hybrid host): that line then
/// names no unit of its.
fn systemd_cgroup_of(proc_cgroup: &str, version: Version) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let wanted = match version {
            Version::V1 => controllers.split(',').any(|c| c == "name=systemd"),
            Version::V2 => controllers.is_empty(),
        };
        wanted.then(|| path.to_string())
    })
}

/// True if this process may write the host's cgroups: root of the initial user namespace.
fn is_real_root() -> bool {
    nix::unistd::geteuid().is_root()
        && crate::idmap::is_initial(&crate::idmap::own_namespace(crate::idmap::IdKind::User))
}

/// True if the system's systemd is this process's to ask for a scope: for real root, and
/// for root of a system container whose own systemd runs as PID 1 in this user namespace
/// (its /run/systemd/system is then owned by this namespace's root). Root of a rootless
/// engine's namespace (rootless podman, rootlesskit) sees the host's systemd there, owned by
/// an unmapped ID: it asks its user's manager, as a user does.
fn asks_the_system_manager() -> bool {
    use std::os::unix::fs::MetadataExt;
    is_real_root()
        || (nix::unistd::geteuid().is_root()
            && std::fs::metadata("/run/systemd/system").is_ok_and(|m| m.uid() == 0))
}

/// The cgroup path of this process in `mount`'s hierarchy (from /proc/self/cgroup).
fn own_path(mount: &Mount) -> Result<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    own_path_in(&text, mount).ok_or_else(|| {
        anyhow!(
            "/proc/self/cgroup names no cgroup of {}",
            mount.path.display()
        )
    })
}

fn own_path_in(proc_cgroup: &str, mount: &Mount) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let listed: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        let matches = match mount.version {
            Version::V2 => listed.is_empty(),
            Version::V1 if mount.controllers.is_empty() => {
                // A named hierarchy (name=systemd): its mount point's last component.
                let name = mount.path.file_name()?.to_str()?;
                listed.iter().any(|c| c.strip_prefix("name=") == Some(name))
            }
            Version::V1 => {
                let mut a: Vec<&str> = mount.controllers.iter().map(String::as_str).collect();
                let mut b = listed.clone();
                a.sort_unstable();
                b.sort_unstable();
                a == b
            }
        };
        matches.then(|| path.to_string())
    })
}

/// The container's cgroups, one per hierarchy.
pub struct Placement {
    version: Version,
    cgroups: Vec<Cgroup>,
    /// With `--systemd-cgroup`: the scope systemd makes once the process is known, and what
    /// is then written in it.
    scope: Option<PendingScope>,
    /// The scope systemd made, once it has.
    systemd: Option<SystemdScope>,
}

/// A scope of systemd's to be made for the container's process.
struct PendingScope {
    systemd: crate::systemd_scope::PendingScope,
    made: SystemdScope,
    mounts: Vec<Mount>,
    resources: LinuxResources,
    devices: Vec<LinuxDevice>,
}

/// Opens the cgroup at `relative` below `mount`, making what is missing; made cpuset cgroups
/// of v1 get their parent's CPUs and memory nodes (an empty cpuset takes no process).
fn make(mount: &Mount, relative: &str) -> Result<Cgroup> {
    let mut cgroup = Cgroup::open(mount, "")?;
    let cpuset = mount.version == Version::V1 && mount.controllers.iter().any(|c| c == "cpuset");
    for name in relative.split('/').filter(|n| !n.is_empty()) {
        if name == "." || name == ".." {
            bail!("linux.cgroupsPath: {relative:?} holds {name:?}");
        }
        let parent = cgroup.duplicate()?;
        cgroup = match cgroup.open_child(name) {
            Ok(child) => child,
            Err(_) => {
                let child = parent.create_child(name).or_else(|e| {
                    // Made meanwhile by another runtime or engine.
                    parent.duplicate()?.open_child(name).map_err(|_| e)
                })?;
                if cpuset {
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        if child.read(file).is_ok_and(|v| v.trim().is_empty()) {
                            child.write(file, parent.read(file)?.trim())?;
                        }
                    }
                }
                child
            }
        };
    }
    Ok(cgroup)
}

impl Placement {
    /// Makes the container's cgroups for `spec` and writes its resources. None where it gets
    /// none (see the module's documentation).
    pub fn create(spec: &Spec, systemd: bool, id: &str) -> Result<Option<Placement>> {
        let Some(linux) = spec.linux() else {
            return Ok(None);
        };
        let resources = linux.resources().clone().unwrap_or_default();
        let cgroups_path = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let skip = |why: &str| {
            if has_limits(&resources) {
                super::log::warn(&format!("linux.resources left unapplied: {why}"));
            }
            Ok(None)
        };
        if cgroups_path.is_empty() && !systemd {
            return skip("linux.cgroupsPath is empty");
        }
        let Some((version, mounts)) = hierarchies(cgroup::mounts()?) else {
            if is_real_root() {
                bail!("linux.cgroupsPath: no cgroup file system is mounted on this host");
            }
            return skip("no cgroup file system is mounted");
        };
        if systemd {
            // The scope is systemd's to make, with the process in it: a helper connected to
            // systemd now (before this process joins any namespace) makes it once the
            // process exists. Where there is no systemd, one line says so (as root), or the
            // container goes without (rootless on v1, as crun).
            if !is_real_root() && version == Version::V1 {
                return skip("--systemd-cgroup: rootless on a cgroup v1 host");
            }
            let unit = if cgroups_path.is_empty() {
                systemd_unit(&format!("system.slice:contain-oci:{id}"))?
            } else {
                systemd_unit(&cgroups_path)?
            };
            if !Path::new("/run/systemd/system").exists() {
                bail!(
                    "--systemd-cgroup: no systemd is reachable (/run/systemd/system is missing) \
                     to make the scope {} in {}: run without --systemd-cgroup (cgroupfs) on this \
                     host",
                    unit.unit,
                    unit.slice
                );
            }
            let request = scope_request(
                &unit,
                id,
                &resources,
                &spec.annotations().clone().unwrap_or_default(),
                !asks_the_system_manager(),
            )?;
            let systemd = crate::systemd_scope::PendingScope::connect(&request).map_err(|e| {
                anyhow!(
                    "--systemd-cgroup: systemd cannot be reached to make the scope {} ({}): \
                     run without --systemd-cgroup (cgroupfs) on this host",
                    unit.unit,
                    crate::errors::one_line(&e)
                )
            })?;
            return Ok(Some(Placement {
                version,
                cgroups: Vec::new(),
                systemd: None,
                scope: Some(PendingScope {
                    systemd,
                    made: SystemdScope {
                        unit: unit.unit.clone(),
                        user_manager: request.user_manager,
                    },
                    mounts,
                    resources,
                    devices: linux.devices().clone().unwrap_or_default(),
                }),
            }));
        }
        if !is_real_root() && version == Version::V1 {
            return skip("rootless on a cgroup v1 host");
        }
        let mut placement = Placement {
            version,
            cgroups: Vec::new(),
            scope: None,
            systemd: None,
        };
        let made = (|| {
            for mount in &mounts {
                let relative = if cgroups_path.starts_with('/') {
                    cgroups_path.clone()
                } else {
                    format!("{}/{}", own_path(mount)?, cgroups_path)
                };
                placement.cgroups.push(make(mount, &relative)?);
            }
            placement.apply(&resources, linux.devices().as_deref().unwrap_or(&[]))
        })();
        match made {
            Ok(()) => Ok(Some(placement)),
            Err(e) if !is_real_root() && is_permission_error(&e) => {
                placement.remove();
                skip(&format!(
                    "no cgroup may be made ({})",
                    crate::errors::one_line(&e)
                ))
            }
            Err(e) => {
                placement.remove();
                Err(e)
            }
        }
    }

    /// Reopens the cgroups a container's state records.
    pub fn open(paths: &[PathBuf]) -> Result<Option<Placement>> {
        if paths.is_empty() {
            return Ok(None);
        }
        Self::open_in(cgroup::mounts()?, paths).map(Some)
    }

    fn open_in(mounts: Vec<Mount>, paths: &[PathBuf]) -> Result<Placement> {
        let mut cgroups = Vec::new();
        for path in paths {
            let mount = mounts
                .iter()
                .filter(|m| path.starts_with(&m.path))
                .max_by_key(|m| m.path.as_os_str().len())
                .ok_or_else(|| anyhow!("{} is in no mounted cgroup hierarchy", path.display()))?;
            let relative = path
                .strip_prefix(&mount.path)
                .expect("a prefix, as filtered");
            cgroups.push(Cgroup::open(mount, &relative.to_string_lossy())?);
        }
        let version = cgroups.first().map_or(Version::V2, Cgroup::version);
        Ok(Placement {
            version,
            cgroups,
            scope: None,
            systemd: None,
        })
    }

    /// The scope systemd made for the container, for the state.
    pub fn systemd_scope(&self) -> Option<&SystemdScope> {
        self.systemd.as_ref()
    }

    /// Their paths on the host, for the state.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.cgroups
            .iter()
            .map(|c| c.path().to_path_buf())
            .collect()
    }

    /// The cgroup of `controller`: v2's one cgroup, or the v1 hierarchy that has it.
    fn of(&self, controller: &str) -> Option<&Cgroup> {
        match self.version {
            Version::V2 => self.cgroups.first(),
            Version::V1 => self.cgroups.iter().find(|c| {
                c.available_controllers()
                    .is_ok_and(|list| list.iter().any(|l| l == controller))
            }),
        }
    }

    /// Writes `resources`; on v2 first enables the controllers they need in every cgroup
    /// above, from the hierarchy's root down.
    pub fn apply(&self, resources: &LinuxResources, nodes: &[LinuxDevice]) -> Result<()> {
        let settings = settings(resources, nodes, self.version)?;
        if self.version == Version::V2 {
            let mut needed: Vec<&str> = settings
                .iter()
                .map(|s| s.controller.as_str())
                .filter(|c| !c.is_empty())
                .collect();
            needed.sort_unstable();
            needed.dedup();
            if !needed.is_empty() {
                self.enable_above(&needed)?;
            }
        }
        for s in &settings {
            let target = if s.controller.is_empty() {
                self.cgroups.first()
            } else {
                self.of(&s.controller)
            };
            let Some(cgroup) = target else {
                if s.controller == "hugetlb" {
                    // Engines list every page size; a host without the controller has no
                    // huge pages to limit.
                    super::log::warn(&format!(
                        "{}: this host has no hugetlb cgroup controller",
                        s.file
                    ));
                    continue;
                }
                bail!(
                    "linux.resources: setting {} needs the {} cgroup controller, which this \
                     host has not mounted",
                    s.file,
                    s.controller
                );
            };
            cgroup
                .write(&s.file, &s.value)
                .with_context(|| format!("linux.resources ({})", s.file))?;
        }
        Ok(())
    }

    /// v2: enables `controllers` in cgroup.subtree_control from the root down to the parent
    /// of the container's cgroup, failing with the list the host offers where one is missing.
    fn enable_above(&self, controllers: &[&str]) -> Result<()> {
        let Some(leaf) = self.cgroups.first() else {
            return Ok(());
        };
        let mounts = cgroup::mounts()?;
        let mount = mounts
            .iter()
            .filter(|m| m.version == Version::V2 && leaf.path().starts_with(&m.path))
            .max_by_key(|m| m.path.as_os_str().len())
            .cloned()
            .unwrap_or(Mount {
                path: leaf
                    .path()
                    .ancestors()
                    .last()
                    .unwrap_or(Path::new("/"))
                    .into(),
                version: Version::V2,
                controllers: Vec::new(),
            });
        enable_controllers_down_to(&mount, leaf.path(), controllers)
    }

    /// Moves process `pid` into every cgroup of the container.
    pub fn add(&mut self, pid: i32) -> Result<()> {
        if let Some(scope) = self.scope.take() {
            return self.add_to_scope(scope, pid);
        }
        for cgroup in &self.cgroups {
            cgroup
                .add_process(pid)
                .context("moving the container's process into its cgroup")?;
        }
        Ok(())
    }

    /// Has systemd make the scope with `pid` in it, then finds the scope's cgroup (where
    /// systemd put the process), makes it in the hierarchies systemd left alone, moves the
    /// process there too and writes the resources.
    fn add_to_scope(&mut self, scope: PendingScope, pid: i32) -> Result<()> {
        // As the helper read it: this process may have joined a cgroup namespace since.
        let proc_cgroup = scope.systemd.start(pid).context("--systemd-cgroup")?;
        // Made: from now on removing the container stops it.
        self.systemd = Some(scope.made.clone());
        let path = systemd_cgroup_of(&proc_cgroup, self.version).ok_or_else(|| {
            anyhow!("--systemd-cgroup: /proc/{pid}/cgroup names no systemd cgroup")
        })?;
        // Anything else would be a cgroup of others', which pause, kill --all and delete
        // would then act on.
        if path.rsplit('/').next() != Some(scope.made.unit.as_str()) {
            bail!(
                "--systemd-cgroup: the process is in {}, not in the scope {} systemd made",
                crate::errors::printable(&path),
                scope.made.unit
            );
        }
        for mount in &scope.mounts {
            let cgroup = make(mount, &path)?;
            self.cgroups.push(cgroup);
        }
        for cgroup in &self.cgroups {
            cgroup
                .add_process(pid)
                .context("moving the container's process into its cgroup")?;
        }
        self.apply(&scope.resources, &scope.devices)
    }

    /// The processes in the container's cgroup (and below it), sorted.
    pub fn processes(&self) -> Vec<i32> {
        let cgroup = match self.version {
            Version::V2 => self.cgroups.first(),
            Version::V1 => ["pids", "freezer", "memory", "cpu"]
                .iter()
                .find_map(|c| self.of(c))
                .or(self.cgroups.first()),
        };
        let mut pids = Vec::new();
        if let Some(cgroup) = cgroup {
            collect_processes(cgroup, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The freezer's cgroup and version, or why there is none.
    fn freezer(&self) -> Result<&Cgroup> {
        self.of("freezer").ok_or_else(|| {
            anyhow!("this host has no freezer cgroup controller (cgroup v1 without freezer)")
        })
    }

    /// True if the container is frozen.
    pub fn is_frozen(&self) -> bool {
        let Ok(cgroup) = self.freezer() else {
            return false;
        };
        match self.version {
            Version::V1 => cgroup
                .read("freezer.state")
                .is_ok_and(|s| s.trim() == "FROZEN"),
            Version::V2 => cgroup.read("cgroup.freeze").is_ok_and(|s| s.trim() == "1"),
        }
    }

    /// Freezes (`true`) or thaws the container's processes and waits until the kernel says
    /// it is done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let cgroup = self.freezer()?;
        let (file, value, done) = match (self.version, frozen) {
            (Version::V1, true) => ("freezer.state", "FROZEN", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED", "THAWED"),
            (Version::V2, true) => ("cgroup.freeze", "1", "frozen 1"),
            (Version::V2, false) => ("cgroup.freeze", "0", "frozen 0"),
        };
        let state_file = match self.version {
            Version::V1 => "freezer.state",
            Version::V2 => "cgroup.events",
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            cgroup.write(file, value)?;
            let state = cgroup.read(state_file)?;
            if state.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: still {:?} after 10 s",
                    cgroup.path().join(state_file).display(),
                    state.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Signals every process of the container, frozen meanwhile so that none forks away; a
    /// frozen container is thawed after SIGKILL, which it could not act on otherwise.
    /// Returns how many processes were signalled.
    pub fn signal_all(&self, signal: i32) -> usize {
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.freeze(true).is_ok();
        let pids = self.processes();
        for &pid in &pids {
            // SAFETY: kill(2) with a PID from the container's cgroup: a process that left it
            // meanwhile (exited) is ESRCH, ignored.
            unsafe { libc::kill(pid, signal) };
        }
        if froze || (was_frozen && signal == libc::SIGKILL) {
            let _ = self.freeze(false);
        }
        pids.len()
    }

    /// Removes the container's cgroups (and any made below them), waiting briefly for ending
    /// processes to leave. Failures are warnings: the container is gone all the same.
    pub fn remove(&self) {
        // systemd stops a scope whose cgroup empties, unless the cgroup is gone before it
        // looks: it is asked, and removes the cgroup itself.
        if let Some(scope) = &self.systemd {
            stop_scope(scope);
        }
        for cgroup in &self.cgroups {
            if let Err(e) = cgroup.remove(Duration::from_secs(5)) {
                super::log::warn(&crate::errors::one_line(&e));
            }
        }
    }
}

fn collect_processes(cgroup: &Cgroup, pids: &mut Vec<i32>) {
    pids.extend(cgroup.processes().unwrap_or_default());
    for child in cgroup.children().unwrap_or_default() {
        collect_processes(&child, pids);
    }
}

fn is_permission_error(e: &anyhow::Error) -> bool {
    let text = e.to_string();
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<nix::errno::Errno>(),
            Some(nix::errno::Errno::EACCES) | Some(nix::errno::Errno::EPERM)
        )
    }) || text.contains("Permission denied")
        || text.contains("Operation not permitted")
        || text.contains("Read-only file system")
}

/// Enables `controllers` in the subtree_control of `mount`'s root and of every cgroup below it
/// down to the parent of `leaf`.
fn enable_controllers_down_to(mount: &Mount, leaf: &Path, controllers: &[&str]) -> Result<()> {
    let relative = leaf
        .strip_prefix(&mount.path)
        .map_err(|_| anyhow!("{} is not below {}", leaf.display(), mount.path.display()))?;
    let names: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut cgroup = Cgroup::open(mount, "")?;
    for (i, name) in names.iter().enumerate() {
        let available = cgroup.available_controllers()?;
        if let Some(missing) = controllers
            .iter()
            .find(|c| !available.iter().any(|a| a == *c))
        {
            bail!(
                "linux.resources: the {missing} controller is not available in {} (it offers: \
                 {})",
                cgroup.path().display(),
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(" ")
                }
            );
        }
        cgroup.enable_controllers(controllers)?;
        if i + 1 < names.len() {
            cgroup = cgroup.open_child(name)?;
        }
    }
    Ok(())
}

/// Moves `pid` into the cgroups of a container's state (an exec'd process joins its
/// container's).
pub fn join_existing(pid: i32, paths: &[PathBuf]) -> Result<()> {
    match Placement::open(paths)? {
        Some(mut placement) => placement.add(pid),
        None => Ok(()),
    }
}

/// Removes the cgroups of a container's state (after its processes ended), for `delete`.
pub fn remove(paths: &[PathBuf], systemd: Option<&SystemdScope>) {
    match Placement::open(paths) {
        Ok(Some(mut placement)) => {
            // Processes left where the container shared a PID namespace outlive its first
            // one: killed, as runc does, or the cgroups could not go.
            if !placement.processes().is_empty() {
                placement.signal_all(libc::SIGKILL);
            }
            placement.systemd = systemd.cloned();
            placement.remove()
        }
        // Gone already (removed by hand, or by a delete that was interrupted after it); the
        // scope, if any, may still be systemd's.
        Ok(None) | Err(_) => {
            if let Some(scope) = systemd {
                stop_scope(scope);
            }
        }
    }
}

/// Has systemd stop `scope`; where it cannot, a warning says so.
fn stop_scope(scope: &SystemdScope) {
    if let Err(e) = crate::systemd_scope::stop(&scope.unit, scope.user_manager) {
        super::log::warn(&format!(
            "--systemd-cgroup: {}",
            crate::errors::one_line(&e)
        ));
    }
}

/// Why a container without cgroups cannot be paused, updated and the like.
pub fn none_error(id: &str, what: &str) -> anyhow::Error {
    anyhow!(
        "cannot {what} container {id}: it has no cgroup (its cgroupsPath was empty, or the \
         runtime could not write the cgroups: rootless on a cgroup v1 host)"
    )
}

/// The container's cgroups for a command that needs them: running (or created), with cgroups.
fn of_live_container(root: &Path, id: &str, what: &str) -> Result<Placement> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    if dir.status(&saved) == Status::Stopped {
        bail!("container not running");
    }
    Placement::open(&saved.cgroups)?.ok_or_else(|| none_error(id, what))
}

/// `pause`: freezes every process of the container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let placement = of_live_container(root, id, "pause")?;
    if placement.is_frozen() {
        bail!("container {id} is already paused");
    }
    placement.freeze(true)
}

/// `resume`: thaws a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let placement = of_live_container(root, id, "resume")?;
    if !placement.is_frozen() {
        bail!("container {id} is not paused");
    }
    placement.freeze(false)
}

/// `update`: writes new resources into a live container's cgroups.
pub fn update(root: &Path, id: &str, resources: &LinuxResources) -> Result<()> {
    of_live_container(root, id, "update")?.apply(resources, &[])
}

/// Reads `update --resources`'s JSON (linux.resources of config.json) from FILE, or stdin for
/// `-`.
pub fn read_resources(file: &Path) -> Result<LinuxResources> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the resources from stdin")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: not linux.resources JSON: {e}",
            if file == Path::new("-") {
                "stdin".to_string()
            } else {
                file.display().to_string()
            }
        )
    })
}

/// True if a container with cgroups is frozen (its state then says "paused").
pub fn is_paused(saved: &Saved) -> bool {
    Placement::open(&saved.cgroups).is_ok_and(|p| p.is_some_and(|p| p.is_frozen()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn find<'a>(settings: &'a [Setting], file: &str) -> Vec<&'a str> {
        settings
            .iter()
            .filter(|s| s.file == file)
            .map(|s| s.value.as_str())
            .collect()
    }

    /// What CRI sends for a burstable pod container (kubelet through containerd).
    const CRI_RESOURCES: &str = r#"{
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
        "memory": {"limit": 134217728, "swap": 134217728, "kernelTCP": 1048576},
        "cpu": {"shares": 256, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 1024},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}]
    }"#;

    #[test]
    fn cri_resources_on_cgroup_v1() {
        let s = settings(&resources(CRI_RESOURCES), &[], Version::V1).unwrap();
        assert_eq!(find(&s, "memory.limit_in_bytes"), ["134217728"]);
        assert_eq!(find(&s, "memory.memsw.limit_in_bytes"), ["134217728"]);
        assert_eq!(find(&s, "memory.kmem.tcp.limit_in_bytes"), ["1048576"]);
        assert_eq!(find(&s, "cpu.shares"), ["256"]);
        let cpu_files: Vec<&str> = s
            .iter()
            .filter(|s| s.controller == "cpu")
            .map(|s| s.file.as_str())
            .collect();
        assert_eq!(
            cpu_files,
            ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
            "the period goes before the quota"
        );
        assert_eq!(find(&s, "cpuset.cpus"), ["0-1"]);
        assert_eq!(find(&s, "pids.max"), ["1024"]);
        assert_eq!(find(&s, "blkio.weight"), ["500"]);
        assert_eq!(find(&s, "blkio.throttle.read_bps_device"), ["8:0 1048576"]);
        assert_eq!(find(&s, "hugetlb.2MB.limit_in_bytes"), ["0"]);
        assert_eq!(find(&s, "devices.deny"), ["a *:* rwm"]);
        let allowed = find(&s, "devices.allow");
        assert_eq!(allowed[0], "c 10:229 rw", "the config's rules come first");
        assert!(allowed.contains(&"c 1:3 rwm"), "/dev/null stays usable");
    }

    #[test]
    fn cri_resources_on_cgroup_v2() {
        let s = settings(&resources(CRI_RESOURCES), &[], Version::V2).unwrap();
        assert_eq!(find(&s, "memory.max"), ["134217728"]);
        assert_eq!(
            find(&s, "memory.swap.max"),
            ["0"],
            "swap is memory plus swap in OCI"
        );
        assert_eq!(find(&s, "cpu.weight"), ["10"]);
        assert_eq!(find(&s, "cpu.max"), ["50000 100000"]);
        assert_eq!(find(&s, "pids.max"), ["1024"]);
        assert_eq!(find(&s, "io.weight"), ["default 4950"]);
        assert_eq!(find(&s, "io.max"), ["8:0 rbps=1048576"]);
        assert_eq!(find(&s, "hugetlb.2MB.max"), ["0"]);
        assert!(
            find(&s, "devices.deny").is_empty(),
            "v2 has no devices files"
        );
    }

    #[test]
    fn unlimited_values_and_unified() {
        let r = resources(
            r#"{"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1},
                "unified": {"memory.high": "1G", "cgroup.max.depth": "3"}}"#,
        );
        let s = settings(&r, &[], Version::V2).unwrap();
        assert_eq!(find(&s, "memory.max"), ["max"]);
        assert_eq!(find(&s, "pids.max"), ["max"]);
        assert_eq!(find(&s, "cpu.max"), ["max 100000"]);
        assert_eq!(find(&s, "memory.high"), ["1G"]);
        let depth = s.iter().find(|s| s.file == "cgroup.max.depth").unwrap();
        assert_eq!(depth.controller, "", "a core file needs no controller");
        let e = settings(&r, &[], Version::V1).unwrap_err().to_string();
        assert!(e.contains("unified needs cgroup v2"), "{e}");
        let bad = resources(r#"{"unified": {"../memory.max": "1"}}"#);
        assert!(settings(&bad, &[], Version::V2).is_err());
    }

    #[test]
    fn share_and_weight_conversions_match_runc() {
        assert_eq!(weight_of_shares(2), 1);
        assert_eq!(weight_of_shares(1024), 39);
        assert_eq!(weight_of_shares(262_144), 10_000);
        assert_eq!(io_weight_of_blkio(10), 1);
        assert_eq!(io_weight_of_blkio(1000), 10_000);
    }

    #[test]
    fn systemd_paths_name_a_scope_in_a_slice() {
        let unit = |slice: &str, unit: &str| SystemdUnit {
            slice: slice.into(),
            unit: unit.into(),
        };
        assert_eq!(
            systemd_unit("kubepods-besteffort-pod12.slice:cri-containerd:abc").unwrap(),
            unit(
                "kubepods-besteffort-pod12.slice",
                "cri-containerd-abc.scope"
            )
        );
        assert_eq!(
            systemd_unit("system.slice:libpod:x").unwrap(),
            unit("system.slice", "libpod-x.scope")
        );
        assert_eq!(
            systemd_unit(":crio:x").unwrap(),
            unit("system.slice", "crio-x.scope")
        );
        assert_eq!(
            systemd_unit("-.slice::x").unwrap(),
            unit("-.slice", "x.scope")
        );
        assert_eq!(
            systemd_unit("user.slice:p:given.scope").unwrap(),
            unit("user.slice", "given.scope")
        );
        for bad in [
            "/kubepods/pod",
            "a.slice:b",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "a.slice:p:../n",
            "a.slice:p:",
            "a.slice:p:n x",
            "x:p:n",
        ] {
            assert!(systemd_unit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scope_request_delegates_accounts_and_takes_the_engines_properties() {
        use crate::systemd_scope::Value;
        let unit = systemd_unit("kubepods-pod1.slice:cri-containerd:abc").unwrap();
        let resources: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576},
            "pids": {"limit": 10}
        }))
        .unwrap();
        let mut annotations = std::collections::HashMap::new();
        annotations.insert(
            "org.systemd.property.TimeoutStopUSec".to_string(),
            "uint64 123456789".to_string(),
        );
        annotations.insert(
            "org.systemd.property.CollectMode".to_string(),
            "'inactive-or-failed'".to_string(),
        );
        annotations.insert("io.kubernetes.pod".to_string(), "x".to_string());
        let request = scope_request(&unit, "abc", &resources, &annotations, false).unwrap();
        assert_eq!(request.unit, "cri-containerd-abc.scope");
        assert!(!request.user_manager);
        let get = |name: &str| {
            request
                .properties
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("Slice"), Some(Value::Str("kubepods-pod1.slice".into())));
        assert_eq!(get("Delegate"), Some(Value::Bool(true)));
        assert_eq!(get("DefaultDependencies"), Some(Value::Bool(false)));
        assert_eq!(get("MemoryAccounting"), Some(Value::Bool(true)));
        assert_eq!(get("TasksAccounting"), Some(Value::Bool(true)));
        assert_eq!(get("CPUAccounting"), None);
        assert_eq!(get("TimeoutStopUSec"), Some(Value::U64(123456789)));
        assert_eq!(
            get("CollectMode"),
            Some(Value::Str("inactive-or-failed".into()))
        );
        assert_eq!(get("PIDs"), None, "PIDs are added once the process exists");
        assert!(request.properties.iter().all(|(n, _)| n != "pod"));

        // The engine may turn delegation off; never set the slice or the processes.
        let mut annotations = std::collections::HashMap::new();
        annotations.insert(
            "org.systemd.property.Delegate".to_string(),
            "false".to_string(),
        );
        let request = scope_request(&unit, "abc", &resources, &annotations, true).unwrap();
        assert!(request.user_manager);
        let delegates: Vec<_> = request
            .properties
            .iter()
            .filter(|(n, _)| n == "Delegate")
            .collect();
        assert_eq!(delegates, [&("Delegate".to_string(), Value::Bool(false))]);
        for (key, value) in [
            ("org.systemd.property.PIDs", "[1]"),
            ("org.systemd.property.Slice", "'x.slice'"),
            ("org.systemd.property.Bad-Name", "true"),
            ("org.systemd.property.Delegate", "maybe"),
        ] {
            let mut annotations = std::collections::HashMap::new();
            annotations.insert(key.to_string(), value.to_string());
            assert!(
                scope_request(&unit, "abc", &resources, &annotations, false).is_err(),
                "{key}={value}"
            );
        }
        // A slice is never the container's own unit.
        let slice = systemd_unit("a.slice:p:b.slice").unwrap();
        let empty = std::collections::HashMap::new();
        assert!(scope_request(&slice, "abc", &resources, &empty, false).is_err());
    }

    #[test]
    fn the_scopes_cgroup_is_found_where_systemd_put_the_process() {
        let hybrid = "12:pids:/kubepods.slice/cri-containerd-abc.scope\n\
                      1:name=systemd:/kubepods.slice/cri-containerd-abc.scope\n\
                      0::/kubepods.slice/cri-containerd-abc.scope\n";
        assert_eq!(
            systemd_cgroup_of(hybrid, Version::V1).as_deref(),
            Some("/kubepods.slice/cri-containerd-abc.scope")
        );
        // v1 where systemd left memory alone: name=systemd says where the scope is.
        let v1 = "4:memory:/\n1:name=systemd:/system.slice/libpod-x.scope\n";
        assert_eq!(
            systemd_cgroup_of(v1, Version::V1).as_deref(),
            Some("/system.slice/libpod-x.scope")
        );
        let v2 = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/p-x.scope\n";
        assert_eq!(
            systemd_cgroup_of(v2, Version::V2).as_deref(),
            Some("/user.slice/user-1000.slice/user@1000.service/app.slice/p-x.scope")
        );
        assert_eq!(systemd_cgroup_of("4:memory:/a\n", Version::V1), None);
        // A systemd on the unified tree in a container of a hybrid host: the kernel's
        // name=systemd hierarchy is not the one it keeps its units in.
        let nested = "9:name=systemd:/\n4:memory:/\n0::/system.slice/contain-oci-x.scope\n";
        assert_eq!(
            systemd_cgroup_of(nested, Version::V2).as_deref(),
            Some("/system.slice/contain-oci-x.scope")
        );
    }

    #[test]
    fn hierarchies_prefer_v1_controllers_over_an_empty_unified_mount() {
        let mount = |path: &str, version, controllers: &[&str]| Mount {
            path: path.into(),
            version,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        };
        let hybrid = vec![
            mount("/sys/fs/cgroup/unified", Version::V2, &[]),
            mount("/sys/fs/cgroup/systemd", Version::V1, &[]),
            mount("/sys/fs/cgroup/memory", Version::V1, &["memory"]),
            mount("/sys/fs/cgroup/freezer", Version::V1, &["freezer"]),
            mount("/mnt/memory-again", Version::V1, &["memory"]),
        ];
        let (version, chosen) = hierarchies(hybrid).unwrap();
        assert_eq!(version, Version::V1);
        let paths: Vec<&str> = chosen.iter().map(|m| m.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/freezer"
            ]
        );
        let unified = vec![mount("/sys/fs/cgroup", Version::V2, &[])];
        assert_eq!(hierarchies(unified).unwrap().0, Version::V2);
        assert!(hierarchies(Vec::new()).is_none());
    }

    #[test]
    fn own_path_matches_the_hierarchy() {
        let text = "9:name=systemd:/user.slice\n4:memory:/a/b\n1:cpu,cpuacct:/c\n0::/d\n";
        let mount = |path: &str, version, controllers: &[&str]| Mount {
            path: path.into(),
            version,
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        };
        let path = |m: Mount| own_path_in(text, &m);
        assert_eq!(
            path(mount("/x/memory", Version::V1, &["memory"])).as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            path(mount("/x/cpu", Version::V1, &["cpuacct", "cpu"])).as_deref(),
            Some("/c")
        );
        assert_eq!(
            path(mount("/x/systemd", Version::V1, &[])).as_deref(),
            Some("/user.slice")
        );
        assert_eq!(path(mount("/x", Version::V2, &[])).as_deref(), Some("/d"));
    }

    /// A directory standing in for a cgroup hierarchy, removed on drop.
    struct FakeTree(PathBuf);

    impl FakeTree {
        fn new(name: &str) -> FakeTree {
            let path = std::env::temp_dir().join(format!(
                "contain-oci-cgroups-test.{}.{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir(&path).unwrap();
            FakeTree(path)
        }

        fn write(&self, relative: &str, text: &str) {
            let path = self.0.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }

        fn read(&self, relative: &str) -> String {
            fs::read_to_string(self.0.join(relative)).unwrap_or_default()
        }
    }

    impl Drop for FakeTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn v2_placement_enables_controllers_down_the_tree_and_writes_the_limits() {
        let tree = FakeTree::new("v2");
        let mount = Mount {
            path: tree.0.clone(),
            version: Version::V2,
            controllers: Vec::new(),
        };
        for dir in ["", "kubepods", "kubepods/pod1"] {
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            tree.write(&format!("{prefix}cgroup.controllers"), "cpu memory pids io");
            tree.write(&format!("{prefix}cgroup.subtree_control"), "");
        }
        // A fake tree has no kernel to make a new cgroup's files: the leaf is there already.
        for file in ["memory.max", "pids.max", "cgroup.freeze", "cgroup.procs"] {
            tree.write(&format!("kubepods/pod1/ctr/{file}"), "");
        }
        let leaf = make(&mount, "/kubepods/pod1/ctr").unwrap();
        let placement = Placement {
            version: Version::V2,
            cgroups: vec![leaf],
            scope: None,
            systemd: None,
        };
        let r = resources(r#"{"memory": {"limit": 1048576}, "pids": {"limit": 10}}"#);
        let needed = ["memory", "pids"];
        enable_controllers_down_to(&mount, placement.cgroups[0].path(), &needed).unwrap();
        for s in settings(&r, &[], Version::V2).unwrap() {
            placement.cgroups[0].write(&s.file, &s.value).unwrap();
        }
        assert_eq!(tree.read("cgroup.subtree_control"), "+memory +pids");
        assert_eq!(
            tree.read("kubepods/pod1/cgroup.subtree_control"),
            "+memory +pids"
        );
        assert_eq!(tree.read("kubepods/pod1/ctr/memory.max"), "1048576");
        assert_eq!(tree.read("kubepods/pod1/ctr/pids.max"), "10");

        let missing = enable_controllers_down_to(&mount, placement.cgroups[0].path(), &["hugetlb"])
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("hugetlb controller is not available"),
            "{missing}"
        );

        // Freezing: the fake kernel "answers" by the test writing cgroup.events beforehand.
        tree.write("kubepods/pod1/ctr/cgroup.events", "populated 1\nfrozen 1\n");
        placement.freeze(true).unwrap();
        assert_eq!(tree.read("kubepods/pod1/ctr/cgroup.freeze"), "1");
        assert!(placement.is_frozen());
        tree.write("kubepods/pod1/ctr/cgroup.procs", "12\n5\n");
        tree.write("kubepods/pod1/ctr/sub/cgroup.procs", "7\n");
        assert_eq!(placement.processes(), [5, 7, 12]);

        let reopened = Placement::open_in(vec![mount.clone()], &placement.paths()).unwrap();
        assert_eq!(reopened.paths(), placement.paths());
    }

    #[test]
    fn v1_placement_writes_each_limit_in_its_hierarchy() {
        let tree = FakeTree::new("v1");
        let cpuset = Mount {
            path: tree.0.join("cpuset"),
            version: Version::V1,
            controllers: vec!["cpuset".into()],
        };
        let memory = Mount {
            path: tree.0.join("memory"),
            version: Version::V1,
            controllers: vec!["memory".into()],
        };
        tree.write("cpuset/cpuset.cpus", "0-3\n");
        tree.write("cpuset/cpuset.mems", "0\n");
        // The kernel would make these files in a new cgroup; the fake tree has them in place.
        tree.write("cpuset/ns/cpuset.cpus", "0-3\n");
        tree.write("memory/ns/c/memory.limit_in_bytes", "");
        let placement = Placement {
            version: Version::V1,
            cgroups: vec![
                make(&cpuset, "/ns").unwrap(),
                make(&memory, "/ns/c").unwrap(),
            ],
            scope: None,
            systemd: None,
        };
        let r = resources(r#"{"memory": {"limit": 4096}, "cpu": {"cpus": "1"}}"#);
        placement.apply(&r, &[]).unwrap();
        assert_eq!(tree.read("memory/ns/c/memory.limit_in_bytes"), "4096");
        assert_eq!(tree.read("cpuset/ns/cpuset.cpus"), "1");
        let no_pids = placement
            .apply(&resources(r#"{"pids": {"limit": 5}}"#), &[])
            .unwrap_err()
            .to_string();
        assert!(
            no_pids.contains("needs the pids cgroup controller"),
            "{no_pids}"
        );
        let no_freezer = placement.freeze(true).unwrap_err().to_string();
        assert!(no_freezer.contains("no freezer"), "{no_freezer}");
    }
}
