//! Entering a running container, for inject: finding the container's init from the PID a user
//! gives, joining its namespaces and root directory, and running a command there as its root.
//!
//! No privilege is needed: the kernel lets a process join the namespaces of any process it may
//! ptrace, and the owner of a user namespace may ptrace everything inside it.
//!
//! It must not give the injected command more than the container's init has (caps), nor enter a
//! container of another user unless the caller is root.

use crate::caps::{Lockdown, User};
use crate::container::MARKER;
use crate::environment::{self as env, Environment};
use crate::errors;
use crate::ns::Joiner;
use crate::process::{self, Exec, DEFAULT_PATH};
use crate::session::{Session, TERMINAL_SIGNALS};
use crate::supervise::Supervisor;
use crate::userns::{self, LifelinePipe};
use crate::watchdog::Watchdog;
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::AccessFlags;
use std::ffi::OsString;
use std::os::fd::OwnedFd;

/// Refuses to run set-user-ID or set-group-ID. Joining namespaces needs no privilege, and a
/// privileged inject would let any user into any container.
pub fn refuse_setid() -> Result<()> {
    let uid_differs = nix::unistd::getuid() != nix::unistd::geteuid();
    let gid_differs = nix::unistd::getgid() != nix::unistd::getegid();
    if uid_differs || gid_differs {
        bail!(
            "refusing to run set-user-ID or set-group-ID: {} needs no privilege (chmod ug-s it)",
            errors::tool()
        );
    }
    Ok(())
}

/// A command to run inside a running container.
pub struct Injection {
    /// The contain supervisor or the container's init, as the user named it.
    pub target: i32,
    /// The command and its arguments; empty for the default shell.
    pub command: Vec<OsString>,
    /// Run the command as this user inside instead of root.
    pub user: Option<User>,
    /// The caller's variables (`-e`, `--env-file`), over the container's.
    pub env: Environment,
}

impl Injection {
    /// Enters the container, runs the command in it as container root (or the user), passes
    /// signals on to it and returns its shell-style status.
    ///
    /// The command never holds more than the container's init: its capability bounding set,
    /// its permitted capabilities (for root inside; a user gets init's ambient ones) and its
    /// no_new_privs, read from init before entering and enforced just before exec.
    ///
    /// This process joins the container's namespaces itself and supervises from there: it
    /// stays in the host's PID namespace (joining one only places the children), so the
    /// command it forks afterwards is the one process that lands in the container's.
    pub fn run(self) -> Result<i32> {
        let init = ContainerInit::find(self.target)?;
        let mut lockdown = Lockdown::of_process(init.pid())?;
        if let Some(user) = self.user {
            lockdown = lockdown.with_ids(user);
            lockdown.check_mapped_in_process(init.pid())?;
        }
        // Opening checks that init still lives, which vouches for what was read from it.
        let entry = init.open()?;
        // The command gets a session of its own, on a pty of ours in place of the caller's
        // terminal (see session.rs), so the terminal's ^C comes to us alone: pass it on too.
        let supervisor = Supervisor::new()?.passing_to_group(&TERMINAL_SIGNALS);
        // Forked before entering, so that it is no process of the container's; it ends the
        // command if inject is SIGKILLed, whatever the command did to its credentials.
        let mut watchdog = Watchdog::start(false, Vec::new())?;
        entry.enter()?;
        // Opened inside, from the container's /dev/ptmx, so the command's tty has a name there.
        let session = Session::for_caller()?;
        let path = init.path_inside()?;
        let command = if self.command.is_empty() {
            vec![default_shell()]
        } else {
            self.command
        };
        let uid = self.user.map_or(0, |u| u.uid);
        let env = environment(init.variables(), path, uid, &self.env);
        let exec = Exec::new(&command, env)?;

        let pipe = LifelinePipe::new()?;
        let child = process::spawn(0, || {
            let lifeline = pipe.child();
            if !lifeline.released() {
                // inject gave up (and said why) before letting us go.
                return Ok(errors::FAILURE);
            }
            session.enter()?;
            // Never the caller's keys.
            crate::keyring::join_new_session()?;
            lockdown.apply()?;
            // No parent-death signal: it would kill the command alone, at once, and leave what
            // the command started orphaned before the watchdog, which kills them all, finds it.
            Err(exec.exec())
        })
        .map_err(|errno| match errno {
            // fork in a PID namespace whose init has ended fails so.
            Errno::ENOMEM => anyhow!("{}: the container has ended", self.target),
            _ => anyhow!("starting the command: {}", errno.desc()),
        })?;
        // Kept open for as long as inject lives: its closing tells a command not yet let go
        // that inject is gone.
        let parent_end = pipe.parent();
        if let Err(e) = watchdog.guard(child, true) {
            process::kill_and_reap(child);
            return Err(e);
        }
        nix::unistd::write(&parent_end, &[1]).context("releasing the command")?;
        // One that dies cannot be replaced from in here: the command is ended then.
        supervisor.guarded_by(watchdog);
        let status = session.wait(&supervisor, child);
        drop(supervisor.take_watchdog());
        status
    }
}

/// The init of a running container: a process in a PID namespace of its own, as its PID 1,
/// whose environment holds `container=contain`.
pub struct ContainerInit {
    proc: ProcDir,
    /// init's PATH; None while its environment could only be read from inside (see
    /// [`Candidate::Unreadable`]).
    path: Option<String>,
    /// The PID as the user gave it (the supervisor's or init's), for messages.
    given: i32,
}

impl ContainerInit {
    /// Finds the container's init from `pid`: the init itself, or the contain supervisor whose
    /// child it is. Every failure is one line naming `pid`.
    pub fn find(pid: i32) -> Result<ContainerInit> {
        let proc = ProcDir::open(pid).map_err(|e| proc_error(pid, "", e))?;
        let status = proc.status().map_err(|e| proc_error(pid, "status", e))?;
        let me = nix::unistd::getuid();
        if !me.is_root() && status.ruid != me.as_raw() && !may_join(pid) {
            bail!("{pid}: belongs to another user (uid {})", status.ruid);
        }
        let found = |proc, path| ContainerInit {
            proc,
            path,
            given: pid,
        };
        match candidate(&proc, &status).map_err(|e| proc_error(pid, "environ", e))? {
            Candidate::Marked(path) => return Ok(found(proc, Some(path))),
            Candidate::Unreadable => return Ok(found(proc, None)),
            Candidate::No => {}
        }
        let mut inits = Vec::new();
        for child in proc.children().map_err(|e| proc_error(pid, "task", e))? {
            // A child that ends meanwhile, or that we may not inspect, is not our container.
            let Ok(child) = ProcDir::open(child) else {
                continue;
            };
            let Ok(status) = child.status() else {
                continue;
            };
            match candidate(&child, &status) {
                Ok(Candidate::Marked(path)) => inits.push((child, Some(path))),
                Ok(Candidate::Unreadable) => inits.push((child, None)),
                Ok(Candidate::No) | Err(_) => {}
            }
        }
        match inits.len() {
            0 => bail!("{pid}: not a contain supervisor or container init"),
            1 => {
                let (proc, path) = inits.remove(0);
                Ok(found(proc, path))
            }
            _ => bail!("{pid}: several container inits are its children: name one of them"),
        }
    }

    /// The init's PID, as the host sees it.
    pub fn pid(&self) -> i32 {
        self.proc.pid
    }

    /// The PATH of the init's environment: where the container finds its commands. Call it
    /// after [`Entry::enter`]: an environment that could not be read from outside is read
    /// then, from the container's /proc, where init is PID 1 and container root may read it;
    /// and only then is its marker checked.
    pub fn path_inside(&self) -> Result<String> {
        if let Some(path) = &self.path {
            return Ok(path.clone());
        }
        let environ = ProcDir::open(1)
            .and_then(|init| init.read("environ"))
            .with_context(|| format!("{}: reading init's environment", self.given))?;
        match marked_path(&environ) {
            Some(path) => Ok(path),
            None => bail!("{}: not a contain supervisor or container init", self.given),
        }
    }

    /// init's environment, as contain gave it: the container's variables (DISPLAY and
    /// XAUTHORITY of a display of its own among them). Call it after [`Entry::enter`], like
    /// [`ContainerInit::path_inside`].
    pub fn variables(&self) -> Environment {
        let environ = self
            .proc
            .read("environ")
            .or_else(|_| ProcDir::open(1).and_then(|init| init.read("environ")))
            .unwrap_or_default();
        environ
            .split(|&b| b == 0)
            .filter_map(|entry| {
                let (key, value) = std::str::from_utf8(entry).ok()?.split_once('=')?;
                Some((key.to_string(), value.to_string()))
            })
            .collect()
    }

    /// Opens the init's namespaces and root directory, to be entered with [`Entry::enter`].
    pub fn open(&self) -> Result<Entry> {
        let pid = self.pid();
        let opened = Joiner::open(pid).and_then(|joiner| {
            // After joining the mount namespace, the root directory would be that namespace's
            // original root, not the one init pivoted to: take init's own while we can see it.
            let root = crate::mount::open_dir(std::path::Path::new(&format!("/proc/{pid}/root")))?;
            Ok(Entry { joiner, root })
        });
        // The files were opened by PID: they are init's only if it is still alive now, when
        // its PID cannot have been reused.
        if !self.proc.alive() {
            bail!("{}: no such process (the container has ended)", self.given);
        }
        opened
    }
}

/// A container's namespaces and root directory, opened but not yet entered.
pub struct Entry {
    joiner: Joiner,
    root: OwnedFd,
}

impl Entry {
    /// Joins the namespaces (user first, mount last), becomes container root (uid and gid 0,
    /// no supplementary groups where the namespace allows setgroups) and takes the container's
    /// root directory as root and working directory.
    pub fn enter(self) -> Result<()> {
        self.joiner.join()?;
        userns::become_root()?;
        nix::unistd::fchdir(&self.root).context("entering the container's root directory")?;
        nix::unistd::chroot(".").context("changing root to the container's root directory")?;
        Ok(())
    }
}

/// /proc/PID of one process, held open: reads through it fail (ESRCH) once the process has
/// been reaped, even if its PID has been reused since.
///
/// The few fields needed are picked from the files directly; this is on the path of every
/// inject, whose cost is measured against nsenter's.
struct ProcDir {
    pid: i32,
    dir: OwnedFd,
}

/// What /proc/PID/status tells about a possible container init.
struct ProcStatus {
    /// The real uid, as the host sees it.
    ruid: u32,
    /// The process's PID in each PID namespace from ours down to its own (NSpid).
    nspid: Vec<i32>,
}

impl ProcDir {
    fn open(pid: i32) -> std::io::Result<ProcDir> {
        let dir = nix::fcntl::open(
            format!("/proc/{pid}").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(ProcDir { pid, dir })
    }

    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let fd = nix::fcntl::openat(
            &self.dir,
            name,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut text = Vec::with_capacity(4096);
        std::fs::File::from(fd).read_to_end(&mut text)?;
        Ok(text)
    }

    fn status(&self) -> std::io::Result<ProcStatus> {
        let text = self.read("status")?;
        let text = String::from_utf8_lossy(&text);
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .unwrap_or("")
        };
        let ruid = field("Uid")
            .split_whitespace()
            .next()
            .and_then(|u| u.parse().ok());
        let Some(ruid) = ruid else {
            return Err(std::io::Error::other("status has no Uid line"));
        };
        let nspid = field("NSpid")
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        Ok(ProcStatus { ruid, nspid })
    }

    /// True until the process has ended (a zombie has ended).
    fn alive(&self) -> bool {
        let Ok(stat) = self.read("stat") else {
            return false;
        };
        // The state follows the command name, which may itself hold ") ".
        let state = stat
            .iter()
            .rposition(|&b| b == b')')
            .and_then(|end| stat.get(end + 2));
        !matches!(state, None | Some(b'Z' | b'X'))
    }

    /// The PIDs of the process's children, from every thread's children list.
    fn children(&self) -> std::io::Result<Vec<i32>> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid))?;
        let mut pids = Vec::new();
        for task in tasks {
            let task = task?.file_name();
            let task = task.to_string_lossy();
            match self.read(&format!("task/{task}/children")) {
                Ok(list) => pids.extend(
                    String::from_utf8_lossy(&list)
                        .split_whitespace()
                        .filter_map(|pid| pid.parse::<i32>().ok()),
                ),
                // Kernels built without CONFIG_PROC_CHILDREN: look at every process's parent.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.alive() => {
                    return Ok(children_by_scan(self.pid));
                }
                // A thread that ended meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(pids)
    }
}

fn children_by_scan(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name: " STATE PPID ...".
            let ppid = stat
                .iter()
                .rposition(|&b| b == b')')
                .and_then(|end| stat.get(end + 2..))
                .and_then(|rest| {
                    String::from_utf8_lossy(rest)
                        .split(' ')
                        .nth(1)?
                        .parse()
                        .ok()
                });
            ppid == Some(parent)
        })
        .collect()
}

/// True if the kernel lets us open the process's namespaces: it does for processes we may
/// ptrace, which includes every process in a user namespace we own, whatever uid it runs as.
/// (Only a process that has ended is not refused: that is reported later, more precisely.)
fn may_join(pid: i32) -> bool {
    match std::fs::File::open(format!("/proc/{pid}/ns/user")) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::PermissionDenied,
    }
}

/// What /proc tells of a process that may be a container's init.
enum Candidate {
    /// Not PID 1 of a PID namespace below ours, or not marked with `container=contain`.
    No,
    /// PID 1 of a PID namespace below ours, marked; with the PATH of its environment.
    Marked(String),
    /// PID 1 of a PID namespace below ours, whose environment we may not read: the file is
    /// mode 0400 and owned by the process's uid, which is not ours when a container's init runs
    /// as a user other than container root. Container root may read it, from inside.
    Unreadable,
}

fn candidate(proc: &ProcDir, status: &ProcStatus) -> std::io::Result<Candidate> {
    let pids = &status.nspid;
    if pids.len() < 2 || pids.last() != Some(&1) {
        return Ok(Candidate::No);
    }
    match proc.read("environ") {
        Ok(environ) => Ok(marked_path(&environ).map_or(Candidate::No, Candidate::Marked)),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && may_join(proc.pid) => {
            Ok(Candidate::Unreadable)
        }
        Err(e) => Err(e),
    }
}

/// The PATH of an environment (NUL-separated, as /proc/PID/environ), if it holds the
/// container marker; the default PATH if it has none.
fn marked_path(environ: &[u8]) -> Option<String> {
    let marker = format!("{}={}", MARKER.0, MARKER.1);
    let mut marked = false;
    let mut path = None;
    for entry in environ.split(|&b| b == 0) {
        if entry == marker.as_bytes() {
            marked = true;
        } else if let Some(value) = entry.strip_prefix(b"PATH=") {
            path = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    marked.then(|| path.unwrap_or_else(|| DEFAULT_PATH.to_string()))
}

/// One line naming the PID for a failure to read its /proc entry (`file` under /proc/PID).
fn proc_error(pid: i32, file: &str, err: std::io::Error) -> anyhow::Error {
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ESRCH) => anyhow!("{pid}: no such process"),
        _ => anyhow!("{pid}: reading /proc/{pid}/{file}: {err}"),
    }
}

/// `$SHELL` if the container has it as an executable file, else /bin/sh. Call it inside.
fn default_shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|shell| {
            std::fs::metadata(shell).is_ok_and(|m| m.is_file())
                && nix::unistd::access(shell.as_os_str(), AccessFlags::X_OK).is_ok()
        })
        .unwrap_or_else(|| "/bin/sh".into())
}

/// The command's environment: the container's (init's, as contain set it), with the
/// container's PATH, the caller's TERM (the command is on the caller's terminal), HOME and
/// USER of the user the command runs as (`uid`), and then the caller's `-e` and `--env-file`
/// (`given`). Nothing else of inject's own environment passes: root's tokens and credentials
/// would be readable by the container's processes.
fn environment(
    container: Environment,
    container_path: String,
    uid: u32,
    given: &Environment,
) -> Environment {
    let mut env: Environment = container
        .into_iter()
        .filter(|(k, _)| k != "HOME" && k != "USER")
        .collect();
    env::set(&mut env, "PATH", container_path);
    env::set(&mut env, MARKER.0, MARKER.1.into());
    if let Ok(term) = std::env::var("TERM") {
        env::set(&mut env, "TERM", term);
    }
    env::set_user_defaults(&mut env, uid);
    env::extend(&mut env, given);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_process_is_not_a_container() {
        let me = std::process::id() as i32;
        let err = ContainerInit::find(me).err().expect("found a container");
        assert_eq!(
            errors::one_line(&err),
            format!("{me}: not a contain supervisor or container init")
        );
    }

    #[test]
    fn a_missing_process_is_named() {
        // PIDs never reach i32::MAX (pid_max is at most 4194304).
        let err = ContainerInit::find(i32::MAX)
            .err()
            .expect("found a process");
        assert_eq!(
            errors::one_line(&err),
            format!("{}: no such process", i32::MAX)
        );
    }

    #[test]
    fn the_environment_is_the_containers_with_the_callers_options_over_it() {
        let pairs = |list: &[(&str, &str)]| -> Environment {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let container = pairs(&[
            ("DISPLAY", ":0"),
            ("PATH", "/init/bin"),
            ("HOME", "/home/init"),
            ("A", "container"),
        ]);
        let given = pairs(&[("A", "caller"), ("B", "1")]);
        let env = environment(container, "/inside/bin".into(), 0, &given);
        let get = |key: &str| {
            env.iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("PATH"), ["/inside/bin"]);
        assert_eq!(get(MARKER.0), [MARKER.1]);
        assert_eq!(get("DISPLAY"), [":0"]);
        assert_eq!(get("A"), ["caller"]);
        assert_eq!(get("B"), ["1"]);
        // The test runs on the host: its /etc/passwd names root's home.
        assert_eq!(get("USER"), ["root"]);
        assert_eq!(get("HOME").len(), 1);
        // Nothing of the test process's own environment but TERM.
        for (k, _) in std::env::vars() {
            if !["TERM", "PATH", "HOME", "USER", "A", "B", "DISPLAY"].contains(&k.as_str()) {
                assert!(get(&k).is_empty(), "{k} passed");
            }
        }
    }

    #[test]
    fn the_path_comes_only_with_the_marker() {
        let marked = b"A=1\0container=contain\0PATH=/x:/y\0";
        assert_eq!(marked_path(marked).as_deref(), Some("/x:/y"));
        assert_eq!(
            marked_path(b"container=contain").as_deref(),
            Some(DEFAULT_PATH)
        );
        assert_eq!(marked_path(b"container=lxc\0PATH=/x\0"), None);
        assert_eq!(marked_path(b"xcontainer=contain\0"), None);
        assert_eq!(marked_path(b""), None);
    }

    #[test]
    fn the_test_process_has_a_status_and_is_alive() {
        let me = ProcDir::open(std::process::id() as i32).unwrap();
        let status = me.status().unwrap();
        assert_eq!(status.ruid, nix::unistd::getuid().as_raw());
        assert_eq!(status.nspid.first(), Some(&(std::process::id() as i32)));
        assert!(me.alive());
    }

    #[test]
    fn equal_real_and_effective_ids_are_not_refused() {
        // The test process runs with equal real and effective IDs.
        assert!(refuse_setid().is_ok());
    }
}
