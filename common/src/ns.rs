//! The kinds of namespace, as the kernel names them, and joining them with setns.
//!
//! It must not decide which namespaces a tool gets: container, pseudo and enter do.

use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::AsFd;

/// A kind of Linux namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    User,
    Cgroup,
    Ipc,
    Net,
    Pid,
    Time,
    Uts,
    Mount,
}

impl Namespace {
    /// Every kind, in the order a process must join them: the user namespace first, because it
    /// grants the capabilities the others need, and the mount namespace last, because joining it
    /// changes the root directory that /proc paths are resolved in.
    pub const JOIN_ORDER: [Namespace; 8] = [
        Namespace::User,
        Namespace::Cgroup,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Time,
        Namespace::Uts,
        Namespace::Mount,
    ];

    /// The CLONE_NEW* flag.
    pub fn flag(self) -> u64 {
        (match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Time => 0x80, // CLONE_NEWTIME, usable with clone3 and setns only
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Mount => libc::CLONE_NEWNS,
        }) as u64
    }

    /// The file under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Pid => "pid",
            Namespace::Time => "time",
            Namespace::Uts => "uts",
            Namespace::Mount => "mnt",
        }
    }

    /// How messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            Namespace::User => "user namespace",
            Namespace::Cgroup => "cgroup namespace",
            Namespace::Ipc => "IPC namespace",
            Namespace::Net => "network namespace",
            Namespace::Pid => "PID namespace",
            Namespace::Time => "time namespace",
            Namespace::Uts => "UTS namespace",
            Namespace::Mount => "mount namespace",
        }
    }

    /// What to check when the kernel refuses to create one.
    pub fn hint(self) -> &'static str {
        match self {
            Namespace::User => {
                "unprivileged user namespaces may be disabled: check sysctl user.max_user_namespaces, \
                 kernel.unprivileged_userns_clone and kernel.apparmor_restrict_unprivileged_userns"
            }
            Namespace::Time => "time namespaces need Linux 5.6 or later",
            Namespace::Cgroup => "cgroup namespaces need CONFIG_CGROUPS",
            Namespace::Net => "check sysctl user.max_net_namespaces",
            Namespace::Ipc => "check sysctl user.max_ipc_namespaces",
            Namespace::Pid => "check sysctl user.max_pid_namespaces",
            Namespace::Uts => "check sysctl user.max_uts_namespaces",
            Namespace::Mount => "check sysctl user.max_mnt_namespaces",
        }
    }

    /// The set of flags for several kinds.
    pub fn flags(kinds: &[Namespace]) -> u64 {
        kinds.iter().fold(0, |acc, ns| acc | ns.flag())
    }
}

/// Moves the calling process into a new namespace of kind `ns` (for a PID or time namespace:
/// its next children).
pub fn unshare(ns: Namespace) -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(ns.flag() as i32))
        .with_context(|| format!("creating a {}", ns.describe()))
}

/// Open namespace files of one process, to be joined later with [`Joiner::join`].
pub struct Joiner {
    files: Vec<(Namespace, File)>,
}

impl Joiner {
    /// Opens /proc/PID/ns/* for every kind in [`Namespace::JOIN_ORDER`]. A kind the kernel lacks
    /// has no file and is skipped; a file that exists but cannot be opened is an error.
    pub fn open(pid: i32) -> Result<Joiner> {
        let mut files = Vec::new();
        for ns in Namespace::JOIN_ORDER {
            let path = format!("/proc/{pid}/ns/{}", ns.proc_name());
            match File::open(&path) {
                Ok(file) => files.push((ns, file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && ns != Namespace::User => {}
                Err(e) => return Err(e).with_context(|| format!("opening {path}")),
            }
        }
        Ok(Joiner { files })
    }

    /// Joins every namespace that differs from the caller's own. Joining one's own user
    /// namespace is refused by the kernel (EINVAL), and the others need no change then either.
    pub fn join(&self) -> Result<()> {
        for (ns, file) in &self.files {
            let own = format!("/proc/self/ns/{}", ns.proc_name());
            if same_file(file, &own) {
                continue;
            }
            let kind = nix::sched::CloneFlags::from_bits_retain(ns.flag() as i32);
            nix::sched::setns(file.as_fd(), kind)
                .with_context(|| format!("joining the {}", ns.describe()))?;
        }
        Ok(())
    }
}

fn same_file(file: &File, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
