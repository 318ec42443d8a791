//! The watchdog: what ends a container, or inject's command, when the tool ends, even of
//! SIGKILL.
//!
//! The parent-death signal alone cannot promise that: the kernel clears it on every change of
//! credentials, so a container whose init runs `su`, a set-user-ID program or `--user` with a
//! setuid init, or an injected `su user -c ...`, would outlive a SIGKILLed tool. The watchdog
//! is a forked copy of the tool that never changes its credentials and never execs. It blocks
//! every signal it can, holds a pidfd of the process it guards (a pidfd cannot be misdirected
//! to a process that reused the PID), and waits on a pipe whose write end only the tool holds.
//! When the pipe ends, because the tool ended, whichever way, it SIGKILLs the guarded process
//! (the init of a PID namespace takes the whole namespace with it) and then its own process
//! group, which the tool's `-o` hooks join with whatever they started in the background. After
//! a normal end the guarded process has ended already; what a hook left running ends with it.
//!
//! Its command line says what it is (`contain: watchdog of PID N`, N the tool's PID), so that
//! `pgrep -f` meant for the container's command does not find it. Should it die all the same
//! (someone kills it), the tool notices at its next SIGCHLD: contain starts another in its place
//! (in the same process group), since the container is the user's and runs on; inject, which
//! sits in the container's namespaces by then and cannot start one outside, ends its command,
//! which nothing would end otherwise.
//!
//! Its cost is one fork at the start and one wait for it at the end.
//!
//! It must not change its credentials or exec: that is what keeps its right to kill what it guards.

use crate::process;
use crate::registry::Removal;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::Pid;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The message that names the process to guard: this tag, then its PID (4 bytes, native order).
const GUARD: u8 = b'G';
/// Also kill the guarded process's descendants (`GUARD_WITH_DESCENDANTS`, then the PID).
const GUARD_WITH_DESCENDANTS: u8 = b'g';
/// Remove a directory tree if the tool is killed: this tag, the path's length (4 bytes,
/// native order), the absolute path.
const LEFTOVER: u8 = b'R';
/// The tool ends normally and cleans up after itself: remove nothing.
const QUIT: u8 = b'Q';
/// The watchdog's process name (what pgrep and `ps -o comm` show).
const WATCHDOG_NAME: &std::ffi::CStr = c"watchdog";

/// What happened when the tool looked at its watchdog ([`Watchdog::keep_guarding`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Guard {
    /// The watchdog runs.
    Kept,
    /// The watchdog had ended: another one, with this PID, runs in its place.
    Replaced { ended: i32, by: i32 },
    /// The watchdog had ended and none can replace it: the guarded process was killed.
    Lost { ended: i32 },
}

/// A running watchdog, the tool's child. Dropping it ends the guarded process, if it still
/// runs, and the watchdog's process group.
pub struct Watchdog {
    pid: Pid,
    /// The process group the first watchdog leads; later ones join it (see
    /// [`Watchdog::keep_guarding`]).
    group: Pid,
    /// What it guards, to start another that guards the same; None for a watchdog made by
    /// [`Watchdog::start`], which cannot be replaced (the tool is inside a container by then).
    replaceable: Option<Guarded>,
    /// The tool's end of the pipe the watchdog reads; its closing (the tool's end closes it)
    /// makes the watchdog kill.
    orders: Option<OwnedFd>,
    /// The watchdog's answers to [`Watchdog::guard`].
    answers: Option<OwnedFd>,
    /// The tool's own pidfd of the guarded process.
    target: Option<OwnedFd>,
    /// Whether [`Watchdog::guard`] makes it replaceable (contain's) or not (inject's).
    replace_after_guard: bool,
    /// What the watchdog removes if the tool is killed, for a replacement to know as well.
    leftovers: Vec<Leftover>,
}

/// What the tool leaves behind on the host if it is killed, for the watchdog to remove.
#[derive(Clone, Debug)]
pub enum Leftover {
    /// The tool's entry in the registry of names, removed if it still names the tool.
    Entry(Removal),
    /// A directory tree of the tool's, by absolute path, reached without following links.
    Tree(CString),
    /// The cgroups contain made for a container (see crate::container_cgroup).
    Cgroups(crate::container_cgroup::Leftover),
}

impl Watchdog {
    /// Starts a watchdog guarding `target`, a child of the caller that is held (not yet let
    /// go, so that it cannot have ended and been reaped); with `with_descendants`, also every
    /// process it started that is still its descendant, and the process group it leads, if it
    /// leads one: for a command that is no namespace's init. The watchdog leads a
    /// process group of its own (see [`Watchdog::process_group`]). Call it while
    /// single-threaded.
    ///
    /// If the tool is killed, the watchdog also removes `leftovers`.
    pub fn guarding(
        target: Pid,
        with_descendants: bool,
        leftovers: Vec<Leftover>,
    ) -> Result<Watchdog> {
        let pidfd = process::pidfd_open(target.as_raw())
            .context("opening a pidfd of the guarded process")?;
        Self::guarding_pidfd(target, pidfd, with_descendants, leftovers)
    }

    /// [`Watchdog::guarding`] a process whose pidfd the caller opened while the process could
    /// not have ended (held, or unreaped): it may run on by now.
    pub fn guarding_pidfd(
        target: Pid,
        pidfd: OwnedFd,
        with_descendants: bool,
        leftovers: Vec<Leftover>,
    ) -> Result<Watchdog> {
        let guarded = Guarded {
            pidfd: Some(pidfd.as_raw_fd()),
            pid: target.as_raw(),
            with_descendants,
            leftovers,
        };
        let mut watchdog = Self::fork(guarded.clone(), false, None)?;
        watchdog.target = Some(pidfd);
        watchdog.leftovers = guarded.leftovers.clone();
        watchdog.replaceable = Some(guarded);
        Ok(watchdog)
    }

    /// Starts a watchdog guarding nothing yet, in the current namespaces: for a tool that is
    /// about to enter others, where a fork would become part of the container. Name what it
    /// guards with [`Watchdog::guard`]. With `replaceable`, one that dies once it guards is
    /// replaced (see [`Watchdog::keep_guarding`]): for a tool that stays in these namespaces.
    pub fn start(replaceable: bool, leftovers: Vec<Leftover>) -> Result<Watchdog> {
        let nothing = Guarded {
            pidfd: None,
            pid: 0,
            with_descendants: false,
            leftovers: leftovers.clone(),
        };
        let mut watchdog = Self::fork(nothing, true, None)?;
        watchdog.replace_after_guard = replaceable;
        watchdog.leftovers = leftovers;
        Ok(watchdog)
    }

    /// Has the watchdog remove the directory tree at `path` (absolute) if the tool is killed.
    pub fn leave_behind(&mut self, path: &Path) -> Result<()> {
        let orders = self.orders.as_ref().context("the watchdog has ended")?;
        let bytes = path.as_os_str().as_bytes();
        let mut message = vec![LEFTOVER];
        message.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
        message.extend_from_slice(bytes);
        write_all(orders.as_raw_fd(), &message).context("instructing the watchdog")?;
        let path = CString::new(bytes).context("a path with a NUL byte")?;
        self.leftovers.push(Leftover::Tree(path.clone()));
        if let Some(guarded) = &mut self.replaceable {
            guarded.leftovers.push(Leftover::Tree(path));
        }
        Ok(())
    }

    /// Forks a watchdog; it leads a process group of its own, or joins `group`.
    fn fork(guarded: Guarded, answering: bool, group: Option<Pid>) -> Result<Watchdog> {
        let flags = nix::fcntl::OFlag::O_CLOEXEC;
        let (orders_read, orders) = nix::unistd::pipe2(flags).context("creating a pipe")?;
        let (answers, answers_write) = if answering {
            let (read, write) = nix::unistd::pipe2(flags).context("creating a pipe")?;
            (Some(read), Some(write))
        } else {
            (None, None)
        };
        let orders_fd = orders_read.as_raw_fd();
        let answers_fd = answers_write.as_ref().map(|w| w.as_raw_fd());
        let tool = nix::unistd::getpid();
        let group_id = group.map_or(0, Pid::as_raw);
        let pid = process::spawn_keeping_signals(0, || {
            watch(orders_fd, answers_fd, guarded, group_id, tool.as_raw());
        })
        .map_err(|e| anyhow::anyhow!("starting the watchdog: {}", e.desc()))?;
        // Also from here, as shells do, so that the group exists before a hook joins it,
        // whichever of the two runs first.
        let group = group.unwrap_or(pid);
        let _ = nix::unistd::setpgid(pid, group);
        Ok(Watchdog {
            pid,
            group,
            replaceable: None,
            orders: Some(orders),
            answers,
            target: None,
            replace_after_guard: false,
            leftovers: Vec::new(),
        })
    }

    /// The watchdog's process group, for the hooks to join: it is killed with the guarded
    /// process. The watchdog itself keeps the group's ID from being reused meanwhile.
    pub fn process_group(&self) -> Pid {
        self.group
    }

    /// The watchdog's PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Looks whether the watchdog still runs; if it has ended, keeps the promise it stood
    /// for: a watchdog of [`Watchdog::guarding`] is replaced by another in the same process
    /// group (joined while the ended one, not yet reaped, still holds the group's ID, so that
    /// the ID cannot have been reused), and the guarded process of one of
    /// [`Watchdog::start`] is killed, with the process group it leads, as the watchdog
    /// would have killed it had the tool ended. Call it while single-threaded.
    pub fn keep_guarding(&mut self) -> Result<Guard> {
        let ended = self.pid.as_raw();
        // SAFETY: waitid with WNOWAIT only reports on our child, leaving it a zombie; the
        // siginfo is ours to fill.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            libc::waitid(libc::P_PID, ended as libc::id_t, &mut info, flags) == 0
                && info.si_pid() == ended
        };
        if !exited {
            return Ok(Guard::Kept);
        }
        let Some(guarded) = self.replaceable.clone() else {
            if let Some(target) = &self.target {
                if let Some(guarded) = self.guarded_group() {
                    // SAFETY: kill takes integers; the group is led by the guarded process,
                    // alive (its pidfd answers), so its ID is still that group's.
                    unsafe { libc::kill(-guarded, libc::SIGKILL) };
                }
                pidfd_signal(target.as_raw_fd(), libc::SIGKILL);
            }
            self.reap();
            self.orders = None;
            return Ok(Guard::Lost { ended });
        };
        let mut next = Self::fork(guarded, false, Some(self.group))?;
        self.reap();
        self.pid = next.pid;
        self.orders = next.orders.take();
        // `next` holds no target; dropping it now would end the group: forget it.
        std::mem::forget(next);
        Ok(Guard::Replaced {
            ended,
            by: self.pid.as_raw(),
        })
    }

    /// The process group the guarded process leads, if it still runs and leads one.
    fn guarded_group(&self) -> Option<i32> {
        let target = self.target.as_ref()?;
        if !pidfd_signal(target.as_raw_fd(), 0) {
            return None;
        }
        let pid = pidfd_pid(target.as_raw_fd())?;
        // SAFETY: getpgid takes an integer.
        (unsafe { libc::getpgid(pid) } == pid).then_some(pid)
    }

    fn reap(&self) {
        while let Err(Errno::EINTR) = nix::sys::wait::waitpid(self.pid, None) {}
    }

    /// Guards `target` with a watchdog made by [`Watchdog::start`]; as [`Watchdog::guarding`].
    pub fn guard(&mut self, target: Pid, with_descendants: bool) -> Result<()> {
        let (Some(orders), Some(answers)) = (&self.orders, &self.answers) else {
            bail!("the watchdog guards something already");
        };
        self.target = Some(
            process::pidfd_open(target.as_raw())
                .context("opening a pidfd of the guarded process")?,
        );
        let mut message = [0u8; 5];
        message[0] = if with_descendants {
            GUARD_WITH_DESCENDANTS
        } else {
            GUARD
        };
        message[1..].copy_from_slice(&target.as_raw().to_ne_bytes());
        nix::unistd::write(orders, &message).context("instructing the watchdog")?;
        let mut answer = [0u8; 4];
        if read_full(answers.as_raw_fd(), &mut answer) != answer.len() {
            bail!("the watchdog ended unexpectedly");
        }
        match i32::from_ne_bytes(answer) {
            0 => {
                if self.replace_after_guard {
                    let pidfd = self.target.as_ref().map(|t| t.as_raw_fd());
                    self.replaceable = Some(Guarded {
                        pidfd,
                        pid: target.as_raw(),
                        with_descendants,
                        leftovers: self.leftovers.clone(),
                    });
                }
                Ok(())
            }
            errno => Err(Errno::from_raw(errno)).context("opening a pidfd of the guarded process"),
        }
    }
}

impl Drop for Watchdog {
    /// Ends what the watchdog would end, and waits, so that once the tool has exited nothing
    /// of it is left running: not the watchdog, not what a hook left in its process group.
    fn drop(&mut self) {
        // None once lost (see keep_guarding): nothing is left to end or wait for.
        let Some(orders) = self.orders.take() else {
            return;
        };
        let running = self
            .target
            .as_ref()
            .is_some_and(|t| pidfd_signal(t.as_raw_fd(), 0));
        if !running {
            // The usual end, the guarded process reaped: no need to wake the watchdog. (The
            // kill is refused when the tool has since become another user in a container's
            // user namespace, as inject may have: then the watchdog does it, as below.)
            // SAFETY: kill takes integers; the group is the watchdog's, which our unreaped
            // child still leads.
            unsafe { libc::kill(-self.group.as_raw(), libc::SIGKILL) };
        }
        // Otherwise the tool gives up on a guarded process that still runs (a failure): the
        // watchdog ends it, with its descendants, and its own group. Either way the tool cleans
        // up after itself: the watchdog is told to leave the leftovers alone.
        let _ = write_all(orders.as_raw_fd(), &[QUIT]);
        drop(orders);
        self.reap();
    }
}

/// What a watchdog kills, and what it removes if the tool is killed.
#[derive(Clone)]
struct Guarded {
    pidfd: Option<RawFd>,
    pid: i32,
    with_descendants: bool,
    leftovers: Vec<Leftover>,
}

/// Writes all of `bytes` to the pipe `fd`.
fn write_all(fd: RawFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes from a slice we hold.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match n {
            n if n > 0 => bytes = &bytes[n as usize..],
            -1 if Errno::last() == Errno::EINTR => {}
            _ => return Err(Errno::last()),
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the pipe ends; returns how much was read.
fn read_full(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the unfilled part of a buffer we own.
        let n = unsafe {
            libc::read(
                fd,
                buf[got..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - got,
            )
        };
        match n {
            n if n > 0 => got += n as usize,
            -1 if Errno::last() == Errno::EINTR => {}
            _ => break,
        }
    }
    got
}

/// The watchdog's life, in the forked child: never returns. It joins process group `group`
/// (0: one of its own) and names itself the watchdog of `tool`.
fn watch(orders: RawFd, answers: Option<RawFd>, mut guarded: Guarded, group: i32, tool: i32) -> ! {
    // SAFETY: plain system calls on integers, on a sigset on this stack and on a static
    // NUL-terminated name; this process is a single-threaded copy of the tool that only ever
    // reads, signals and exits.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        libc::setpgid(0, group);
        // A name of its own, so that `pgrep contain` (as in `inject $(pgrep -n contain)`)
        // finds the supervisors, never their watchdogs.
        libc::prctl(libc::PR_SET_NAME, WATCHDOG_NAME.as_ptr());
    }
    // And a command line of its own, so that `pgrep -f` finds the container's command alone.
    set_command_line(&format!(
        "{}: watchdog of PID {tool}",
        crate::errors::tool()
    ));
    let mut keep: Vec<RawFd> = [Some(orders), answers, guarded.pidfd]
        .into_iter()
        .flatten()
        .collect();
    for leftover in &guarded.leftovers {
        if let Leftover::Entry(entry) = leftover {
            keep.push(entry.dir);
        }
    }
    close_all_but(&keep);
    let parent = nix::unistd::getppid();
    let mut tag = [0u8; 1];
    let mut quitting = false;
    while read_full(orders, &mut tag) == 1 {
        if tag[0] == QUIT {
            quitting = true;
            continue;
        }
        if tag[0] == LEFTOVER {
            let mut length = [0u8; 4];
            if read_full(orders, &mut length) != 4 {
                break;
            }
            let mut path = vec![0u8; u32::from_ne_bytes(length) as usize];
            if read_full(orders, &mut path) != path.len() {
                break;
            }
            if let Ok(path) = CString::new(path) {
                guarded.leftovers.push(Leftover::Tree(path));
            }
            continue;
        }
        let (GUARD | GUARD_WITH_DESCENDANTS, Some(answers)) = (tag[0], answers) else {
            break;
        };
        let mut pid = [0u8; 4];
        if read_full(orders, &mut pid) != 4 {
            break;
        }
        guarded.pid = i32::from_ne_bytes(pid);
        guarded.with_descendants = tag[0] == GUARD_WITH_DESCENDANTS;
        let answer = match process::pidfd_open(guarded.pid) {
            Ok(fd) => {
                guarded.pidfd = Some(fd.as_raw_fd());
                std::mem::forget(fd);
                0
            }
            Err(e) => e as i32,
        };
        // The PID named the tool's held child only while the tool lives: if it died
        // meanwhile, the child may have ended, been reaped and its PID reused. A held child
        // ends by itself when the tool dies, so there is nothing to kill then.
        if nix::unistd::getppid() != parent {
            exit(0);
        }
        // SAFETY: writes 4 bytes from a local array.
        unsafe { libc::write(answers, answer.to_ne_bytes().as_ptr().cast(), 4) };
    }
    // The tool has ended (or broke the protocol, which it never does).
    if let Some(pidfd) = guarded.pidfd {
        if guarded.with_descendants && pidfd_signal(pidfd, 0) {
            kill_descendants(pidfd, guarded.pid);
        }
        pidfd_signal(pidfd, libc::SIGKILL);
    }
    // A tool that ended normally has cleaned up; one that was killed left these behind.
    if !quitting {
        for leftover in &guarded.leftovers {
            match leftover {
                Leftover::Entry(entry) => entry.remove(),
                Leftover::Tree(path) => remove_tree(path),
                Leftover::Cgroups(cgroups) => cgroups.remove(),
            }
        }
    }
    // Last, since it ends the watchdog too: the hooks and what they left running.
    // SAFETY: kill takes integers; 0 is our own process group.
    unsafe { libc::kill(0, libc::SIGKILL) };
    exit(0)
}

/// Kills every descendant of `pid` (alive: its PID cannot have been reused) and the process
/// group it leads, if it leads one. Each process found is stopped first, so that none forks
/// behind the search, and opened as a pidfd once its parent is confirmed, so that no PID is
/// mistaken for another; the search repeats until it finds no new one. (A process whose
/// parent ended earlier has left the tree, and is not found.)
fn kill_descendants(pidfd: RawFd, pid: i32) {
    pidfd_signal(pidfd, libc::SIGSTOP);
    let mut tree = vec![pid];
    let mut opened = Vec::new();
    loop {
        let before = tree.len();
        for (child, parent) in parents() {
            if tree.contains(&child) || !tree.contains(&parent) {
                continue;
            }
            let Ok(fd) = process::pidfd_open(child) else {
                continue;
            };
            // Opened after its parent was read: still that parent's child, so the same process.
            if parent_of(child) != Some(parent) {
                continue;
            }
            pidfd_signal(fd.as_raw_fd(), libc::SIGSTOP);
            tree.push(child);
            opened.push(fd);
        }
        if tree.len() == before {
            break;
        }
    }
    // SAFETY: getpgid and kill take integers.
    unsafe {
        if libc::getpgid(pid) == pid {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    for fd in &opened {
        pidfd_signal(fd.as_raw_fd(), libc::SIGKILL);
    }
}

/// Every process's (PID, parent PID), from /proc.
fn parents() -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

/// The parent PID in /proc/PID/stat, which follows the command name (that may hold ") ").
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let end = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(end + 2..)?).ok()?;
    rest.split(' ').nth(1)?.parse().ok()
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends this forked copy without running the tool's exit handlers.
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor except `keep`.
fn close_all_but(keep: &[RawFd]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from: u32 = 0;
    for fd in keep {
        if fd as u32 > from {
            process::close_range(from, fd as u32 - 1, 0);
        }
        from = fd as u32 + 1;
    }
    process::close_range(from, u32::MAX, 0);
}

/// Removes the directory tree at the absolute `path`, reaching it and everything in it without
/// following a symbolic link.
fn remove_tree(path: &CString) {
    use nix::fcntl::OFlag;
    let Ok(path) = path.to_str() else {
        return;
    };
    let Some((parent, name)) = path.rsplit_once('/') else {
        return;
    };
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(mut dir) = nix::fcntl::open("/", flags, nix::sys::stat::Mode::empty()) else {
        return;
    };
    for component in parent.split('/').filter(|c| !c.is_empty()) {
        match nix::fcntl::openat(&dir, component, flags, nix::sys::stat::Mode::empty()) {
            Ok(next) => dir = next,
            Err(_) => return,
        }
    }
    remove_tree_at(&dir, name, 0);
}

/// Removes `name` in `dir`, a directory with what it holds, or a file; at most 16 levels deep.
fn remove_tree_at(dir: &OwnedFd, name: &str, depth: usize) {
    use nix::fcntl::OFlag;
    use nix::unistd::{unlinkat, UnlinkatFlags};
    if unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).is_ok() || depth > 16 {
        return;
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(inner) = nix::fcntl::openat(dir, name, flags, nix::sys::stat::Mode::empty()) else {
        return;
    };
    let names: Vec<String> = match inner.try_clone().map(nix::dir::Dir::from_fd) {
        Ok(Ok(mut listing)) => listing
            .iter()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n != "." && n != "..")
            .collect(),
        _ => Vec::new(),
    };
    for entry in names {
        remove_tree_at(&inner, &entry, depth + 1);
    }
    let _ = unlinkat(dir, name, UnlinkatFlags::RemoveDir);
}

/// Replaces what /proc/self/cmdline shows (what `ps` and `pgrep -f` read) with `title`, in
/// place, as setproctitle(3) does: the kernel reads on past the arguments into the environment
/// strings that follow them when the last byte of the arguments is no longer a NUL, up to the
/// first NUL. The environment strings are overwritten: for the watchdog only, which reads no
/// variable. Longer titles are cut to the space the two take.
fn set_command_line(title: &str) {
    let Ok(stat) = std::fs::read("/proc/self/stat") else {
        return;
    };
    // Fields 48 to 51 (arg_start, arg_end, env_start, env_end), after the command name, which
    // may hold spaces and ends at the last ')': field 3 is the first after it.
    let Some(end) = stat.iter().rposition(|&b| b == b')') else {
        return;
    };
    let fields: Vec<usize> = String::from_utf8_lossy(&stat[end + 1..])
        .split_whitespace()
        .skip(48 - 3)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    let &[arg_start, arg_end, env_start, env_end] = fields.as_slice() else {
        return;
    };
    // Only where the environment follows the arguments, as the kernel lays them out.
    let area_end = if env_start == arg_end {
        env_end
    } else {
        arg_end
    };
    if arg_start == 0 || area_end <= arg_start + 1 {
        return;
    }
    let area = area_end - arg_start;
    let mut text = vec![0u8; area];
    let shown = title.len().min(area - 1);
    text[..shown].copy_from_slice(&title.as_bytes()[..shown]);
    // A non-NUL last byte of the arguments makes the kernel stop at the title's NUL instead.
    let last_of_args = arg_end - arg_start - 1;
    if text[last_of_args] == 0 && last_of_args > shown {
        text[last_of_args] = b' ';
    }
    // SAFETY: [arg_start, area_end) is this process's own argument and environment strings,
    // writable stack memory the kernel placed there; the watchdog reads neither (Rust's
    // arguments and environment are copied out of them when read, and it reads none).
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), arg_start as *mut u8, area) };
}

/// The PID of a pidfd's process, as /proc/self/fdinfo tells it.
fn pidfd_pid(pidfd: RawFd) -> Option<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{pidfd}")).ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()
        .filter(|&pid| pid > 0)
}

fn pidfd_signal(pidfd: RawFd, signal: i32) -> bool {
    // SAFETY: pidfd_send_signal with a null siginfo behaves as kill(2) on the pidfd's process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    ret == 0
}
