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
//! Its cost is one fork at the start and one wait for it at the end.
//!
//! It must not change its credentials or exec: that is what keeps its right to kill what it guards.

use crate::process;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The message that names the process to guard: this tag, then its PID (4 bytes, native order).
const GUARD: u8 = b'G';
/// Also kill the guarded process's descendants (`GUARD_WITH_DESCENDANTS`, then the PID).
const GUARD_WITH_DESCENDANTS: u8 = b'g';
/// The watchdog's process name (what pgrep and `ps -o comm` show).
const WATCHDOG_NAME: &std::ffi::CStr = c"watchdog";

/// A running watchdog, the tool's child. Dropping it ends the guarded process, if it still
/// runs, and the watchdog's process group.
pub struct Watchdog {
    pid: Pid,
    /// The tool's end of the pipe the watchdog reads; its closing (the tool's end closes it)
    /// makes the watchdog kill.
    orders: Option<OwnedFd>,
    /// The watchdog's answers to [`Watchdog::guard`].
    answers: Option<OwnedFd>,
    /// The tool's own pidfd of the guarded process.
    target: Option<OwnedFd>,
}

impl Watchdog {
    /// Starts a watchdog guarding `target`, a child of the caller that is held (not yet let
    /// go, so that it cannot have ended and been reaped); with `with_descendants`, also every
    /// process it started that is still its descendant, and the process group it leads, if it
    /// leads one: for a command that is no namespace's init. The watchdog leads a
    /// process group of its own (see [`Watchdog::process_group`]). Call it while
    /// single-threaded.
    pub fn guarding(target: Pid, with_descendants: bool) -> Result<Watchdog> {
        let pidfd = process::pidfd_open(target.as_raw())
            .context("opening a pidfd of the guarded process")?;
        let guarded = Guarded {
            pidfd: Some(pidfd.as_raw_fd()),
            pid: target.as_raw(),
            with_descendants,
        };
        let mut watchdog = Self::fork(guarded, false)?;
        watchdog.target = Some(pidfd);
        Ok(watchdog)
    }

    /// Starts a watchdog guarding nothing yet, in the current namespaces: for a tool that is
    /// about to enter others, where a fork would become part of the container. Name what it
    /// guards with [`Watchdog::guard`].
    pub fn start() -> Result<Watchdog> {
        let nothing = Guarded {
            pidfd: None,
            pid: 0,
            with_descendants: false,
        };
        Self::fork(nothing, true)
    }

    fn fork(guarded: Guarded, answering: bool) -> Result<Watchdog> {
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
        let pid = process::spawn_keeping_signals(0, || {
            watch(orders_fd, answers_fd, guarded);
        })
        .map_err(|e| anyhow::anyhow!("starting the watchdog: {}", e.desc()))?;
        // Also from here, as shells do, so that the group exists before a hook joins it,
        // whichever of the two runs first.
        let _ = nix::unistd::setpgid(pid, pid);
        Ok(Watchdog {
            pid,
            orders: Some(orders),
            answers,
            target: None,
        })
    }

    /// The watchdog's process group, for the hooks to join: it is killed with the guarded
    /// process. The watchdog itself keeps the group's ID from being reused meanwhile.
    pub fn process_group(&self) -> Pid {
        self.pid
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
            0 => Ok(()),
            errno => Err(Errno::from_raw(errno)).context("opening a pidfd of the guarded process"),
        }
    }
}

impl Drop for Watchdog {
    /// Ends what the watchdog would end, and waits, so that once the tool has exited nothing
    /// of it is left running: not the watchdog, not what a hook left in its process group.
    fn drop(&mut self) {
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
            unsafe { libc::kill(-self.pid.as_raw(), libc::SIGKILL) };
        }
        // Otherwise the tool gives up on a guarded process that still runs (a failure): the
        // watchdog ends it, with its descendants, and its own group.
        drop(self.orders.take());
        while let Err(Errno::EINTR) = nix::sys::wait::waitpid(self.pid, None) {}
    }
}

/// What a watchdog kills.
#[derive(Clone, Copy)]
struct Guarded {
    pidfd: Option<RawFd>,
    pid: i32,
    with_descendants: bool,
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

/// The watchdog's life, in the forked child: never returns.
fn watch(orders: RawFd, answers: Option<RawFd>, mut guarded: Guarded) -> ! {
    // SAFETY: plain system calls on integers, on a sigset on this stack and on a static
    // NUL-terminated name; this process is a single-threaded copy of the tool that only ever
    // reads, signals and exits.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        libc::setpgid(0, 0);
        // A name of its own, so that `pgrep contain` (as in `inject $(pgrep -n contain)`)
        // finds the supervisors, never their watchdogs.
        libc::prctl(libc::PR_SET_NAME, WATCHDOG_NAME.as_ptr());
    }
    let keep: Vec<RawFd> = [Some(orders), answers, guarded.pidfd]
        .into_iter()
        .flatten()
        .collect();
    close_all_but(&keep);
    let parent = nix::unistd::getppid();
    let mut tag = [0u8; 1];
    while read_full(orders, &mut tag) == 1 {
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
