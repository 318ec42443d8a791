//! The cgroup a container's init gets, for a systemd init (which needs a cgroup v2 subtree it
//! may write) and for resource limits; the mechanics are crate::cgroup's.
//!
//! - Started in a cgroup delegated to the caller (the caller owns the directory and its
//!   cgroup.procs, as under `systemd-run --user --scope -p Delegate=yes`), contain moves
//!   itself into a `supervisor` child of it and places init in a sibling, `container`: init's
//!   cgroup is the root of the container's cgroup namespace, which systemd takes over entirely
//!   (it moves every process it finds there), and the limits need the delegated cgroup free of
//!   processes to enable controllers for its children.
//! - Real root in the hierarchy's root cgroup (a host without systemd) creates a cgroup of its
//!   own, `contain-PID`, below the root, and places init there; contain itself stays put.
//! - Otherwise there is no cgroup to write, and a start that needs one is refused before
//!   anything starts, with one line naming the fix.
//!
//! The container's cgroup is given to container root where that is not the caller. Every
//! cgroup made here is removed when the container ends: by contain, or by its watchdog when
//! contain was killed (see [`Leftover`]).

use crate::cgroup::{self, Cgroup, Mount, Resources};
use crate::errors;
use anyhow::{anyhow, bail, Result};
use nix::unistd::Pid;
use std::time::Duration;

/// The child of a delegated cgroup that contain moves itself into.
pub const SUPERVISOR: &str = "supervisor";
/// The child of a delegated cgroup that init starts in.
pub const CONTAINER: &str = "container";
/// The prefix of the cgroup real root makes below the hierarchy's root.
pub const OWN_PREFIX: &str = "contain-";

/// How long processes that are ending may take to leave a cgroup being removed.
const PATIENCE: Duration = Duration::from_secs(10);

/// What the container needs a cgroup for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    /// Init is systemd.
    pub systemd: bool,
    /// Limits to set on the container's cgroup.
    pub limits: Resources,
}

/// A container's cgroup, made for it, removed on drop.
pub struct ContainerCgroup {
    /// Where init runs.
    container: Option<Cgroup>,
    /// For a delegated cgroup: it, and its child that contain moved itself into.
    supervised: Option<(Cgroup, Cgroup)>,
    /// What the watchdog removes should contain be killed.
    leftover: Leftover,
}

/// The cgroups contain made for a container, by their paths in the hierarchy, for its watchdog
/// to remove should contain be killed: a copy of contain that opens them afresh, one name at
/// a time without following links, from the hierarchy's mount point.
#[derive(Clone, Debug)]
pub struct Leftover {
    mount: Mount,
    /// The container's cgroup, relative to the hierarchy's root.
    container: String,
    /// The delegated cgroup and the name of its child contain moved itself into.
    supervised: Option<(String, String)>,
}

impl Leftover {
    /// Kills what is left in the container's cgroup and removes it with everything below; with
    /// a delegated cgroup, moves the calling process (the watchdog) back into it, kills what is
    /// left in the supervisor cgroup and removes that. Silent: the watchdog has no stderr.
    pub fn remove(&self) {
        if let Ok(container) = Cgroup::open(&self.mount, &self.container) {
            container.kill_all();
            let _ = container.remove(PATIENCE);
        }
        if let Some((parent, supervisor)) = &self.supervised {
            let opened = Cgroup::open(&self.mount, parent).and_then(|parent| {
                let child = parent.duplicate()?.open_child(supervisor)?;
                Ok((parent, child))
            });
            if let Ok((parent, supervisor)) = opened {
                let _ = leave(&parent, &supervisor);
            }
        }
    }
}

/// The option that sets a limit needing `controller`.
fn option_of(controller: &str) -> &'static str {
    match controller {
        "cpu" => "--cpus",
        "memory" => "--memory",
        _ => "--pids-limit",
    }
}

impl ContainerCgroup {
    /// Makes the container's cgroup when `needs` asks for one (else None), with the limits
    /// set, given to `container_root` (host uid and gid) where that is not the caller.
    pub fn set_up(needs: Needs, container_root: Option<(u32, u32)>) -> Result<Option<Self>> {
        if !needs.systemd && needs.limits.is_empty() {
            return Ok(None);
        }
        let purpose = if needs.systemd {
            "booting systemd".to_string()
        } else {
            let options: Vec<&str> = needs
                .limits
                .controllers()
                .into_iter()
                .map(option_of)
                .collect();
            options.join(", ")
        };
        let Some(mount) = cgroup::unified_mount()? else {
            bail!(
                "{purpose} needs a cgroup v2 hierarchy, and none is mounted (mount -t cgroup2 \
                 none /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host)"
            );
        };
        let own = cgroup::own_unified_path()?.unwrap_or_else(|| "/".to_string());
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        let mut made = ContainerCgroup {
            container: None,
            supervised: None,
            leftover: Leftover {
                mount: mount.clone(),
                container: String::new(),
                supervised: None,
            },
        };
        let parent = if euid == 0 && own == "/" {
            let root = Cgroup::open(&mount, "/")?;
            let container = create_own(&root)?;
            made.leftover.container = format!("/{}", name_of(&container));
            made.container = Some(container);
            root
        } else {
            let current = Cgroup::open(&mount, &own)?;
            if !current.is_delegated_to(euid) {
                bail!(
                    "{purpose} needs a cgroup v2 subtree delegated to you, and {} is not \
                     yours: start contain in one, e.g. systemd-run --user --scope -p \
                     Delegate=yes contain ...",
                    current.path().display()
                );
            }
            let supervisor = create_replacing_stale(&current, SUPERVISOR)?;
            let moved = supervisor.add_process(std::process::id() as i32);
            made.supervised = Some((current.duplicate()?, supervisor));
            made.leftover.supervised = Some((own.clone(), SUPERVISOR.to_string()));
            moved?;
            made.container = Some(create_replacing_stale(&current, CONTAINER)?);
            made.leftover.container = format!("{}/{CONTAINER}", own.trim_end_matches('/'));
            current
        };
        let container = made.container.as_ref().expect("made above");
        if !needs.limits.is_empty() {
            set_limits(&parent, container, &needs.limits)?;
        }
        if let Some((uid, gid)) = container_root.filter(|&ids| ids != (euid, egid)) {
            container
                .delegate(uid, gid, &cgroup::delegate_files())
                .map_err(|e| {
                    anyhow!("{e} (container root is host uid {uid}, which must own its cgroup)")
                })?;
        }
        Ok(Some(made))
    }

    /// The container's cgroup on the host.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.container.as_ref().map(Cgroup::path)
    }

    /// Places process `pid` (init, held before it runs anything) in the container's cgroup.
    pub fn place(&self, pid: Pid) -> Result<()> {
        match &self.container {
            Some(container) => container.add_process(pid.as_raw()),
            None => Ok(()),
        }
    }

    /// Empties the container's cgroup for the next boot: what the last one made below it
    /// (systemd's slices and scopes) is removed.
    pub fn reset(&self) -> Result<()> {
        if let Some(container) = &self.container {
            container.kill_all();
            container.remove_children(PATIENCE)?;
        }
        Ok(())
    }

    /// What the watchdog is to remove should contain be killed.
    pub fn leftover(&self) -> Leftover {
        self.leftover.clone()
    }

    fn remove_container(&self) -> Result<()> {
        match &self.container {
            Some(container) => {
                container.kill_all();
                container.remove(PATIENCE)
            }
            None => Ok(()),
        }
    }

    /// Leaves the supervisor cgroup (see [`leave`]).
    fn leave_supervisor(&self) -> Result<()> {
        match &self.supervised {
            Some((parent, supervisor)) => leave(parent, supervisor),
            None => Ok(()),
        }
    }
}

/// Kills what is left in `supervisor` but the calling process, moves that back to `parent`,
/// and removes `supervisor`.
fn leave(parent: &Cgroup, supervisor: &Cgroup) -> Result<()> {
    let me = std::process::id() as i32;
    for pid in supervisor.processes().unwrap_or_default() {
        if pid != me {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
    parent.add_process(me)?;
    supervisor.remove(PATIENCE)
}

/// The last component of a cgroup's path.
fn name_of(cgroup: &Cgroup) -> String {
    cgroup
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        for result in [self.remove_container(), self.leave_supervisor()] {
            if let Err(e) = result {
                errors::warn(&errors::one_line(&e));
            }
        }
    }
}

/// Creates `contain-PID` below `root`; one left by an earlier contain of the same PID that
/// was killed before its cleanup is removed first if it is empty.
fn create_own(root: &Cgroup) -> Result<Cgroup> {
    create_replacing_stale(root, &format!("{OWN_PREFIX}{}", std::process::id()))
}

/// Creates child `name` of `parent`. One that exists already and holds no process is the
/// leftover of a contain killed before its watchdog knew of it: it is removed and made anew.
/// One that holds processes is another container's.
fn create_replacing_stale(parent: &Cgroup, name: &str) -> Result<Cgroup> {
    let first = match parent.create_child(name) {
        Ok(made) => return Ok(made),
        Err(e) => e,
    };
    let Ok(existing) = parent.duplicate().and_then(|p| p.open_child(name)) else {
        return Err(first);
    };
    if existing.is_populated() {
        bail!(
            "{first} (another container started in the same cgroup? start each in one of its own)"
        );
    }
    existing.remove(Duration::ZERO)?;
    parent.create_child(name)
}

/// Enables the controllers of `limits` for the children of `parent` and sets the limits on
/// `container`, or says which controller is missing and why.
fn set_limits(parent: &Cgroup, container: &Cgroup, limits: &Resources) -> Result<()> {
    let available = parent.available_controllers()?;
    for controller in limits.controllers() {
        if !available.iter().any(|c| c == controller) {
            let offered = if available.is_empty() {
                "none".to_string()
            } else {
                available.join(" ")
            };
            bail!(
                "{} needs the {controller} controller, which {} does not offer (it has: \
                 {offered}); whoever delegated it must enable {controller} for it",
                option_of(controller),
                parent.path().display()
            );
        }
    }
    parent
        .enable_controllers(&limits.controllers())
        .map_err(|e| {
            if e.to_string().ends_with("Device or resource busy") {
                anyhow!(
                    "{e}: other processes are in {} itself",
                    parent.path().display()
                )
            } else {
                e
            }
        })?;
    container.apply(limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{CpuQuota, Mount, Version};
    use std::fs;
    use std::path::PathBuf;

    fn fake(name: &str, controllers: &str, enabled: &str) -> (PathBuf, Cgroup) {
        let path = std::env::temp_dir().join(format!(
            "contain-container-cgroup-test.{}.{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        fs::write(path.join("cgroup.controllers"), controllers).unwrap();
        fs::write(path.join("cgroup.subtree_control"), enabled).unwrap();
        let mount = Mount {
            path: path.clone(),
            version: Version::V2,
            controllers: Vec::new(),
        };
        (path.clone(), Cgroup::open(&mount, "/").unwrap())
    }

    #[test]
    fn limits_need_their_controllers_in_the_parent() {
        let limits = Resources {
            memory: Some(1 << 30),
            pids: Some(64),
            cpu: CpuQuota::of_cpus(1.0),
        };
        let (path, parent) = fake("missing", "pids hugetlb\n", "");
        let container = parent.create_child(CONTAINER).unwrap();
        let err = set_limits(&parent, &container, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--cpus needs the cpu controller"), "{err}");
        assert!(err.contains("it has: pids hugetlb"), "{err}");
        // Nothing was enabled or written.
        assert_eq!(
            fs::read_to_string(path.join("cgroup.subtree_control")).unwrap(),
            ""
        );
        fs::remove_dir_all(&path).unwrap();

        let (path, parent) = fake("present", "cpu memory pids\n", "cpu\n");
        let container = parent.create_child(CONTAINER).unwrap();
        for file in ["cpu.max", "memory.max", "pids.max"] {
            fs::write(path.join(CONTAINER).join(file), "max\n").unwrap();
        }
        set_limits(&parent, &container, &limits).unwrap();
        let read = |f: &str| fs::read_to_string(path.join(f)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+memory +pids");
        assert_eq!(read("container/memory.max"), "1073741824");
        assert_eq!(read("container/pids.max"), "64");
        assert_eq!(read("container/cpu.max"), "100000 100000");
        fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn the_options_are_named_for_their_controllers() {
        let memory_only = Resources {
            memory: Some(1),
            ..Resources::default()
        };
        let (path, parent) = fake("none", "", "");
        let container = parent.create_child(CONTAINER).unwrap();
        let err = set_limits(&parent, &container, &memory_only)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--memory needs the memory controller"),
            "{err}"
        );
        assert!(err.contains("it has: none"), "{err}");
        fs::remove_dir_all(&path).unwrap();
    }
}
