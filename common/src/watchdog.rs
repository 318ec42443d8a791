//! The watchdog: what ends a container, or inject's command, when the tool is SIGKILLed.
//!
//! The parent-death signal alone cannot promise that: the kernel clears it on every change of
//! credentials, so a container whose init runs `su`, a set-user-ID program or `--user` with a
//! setuid init, or an injected `su user -c ...`, would outlive a SIGKILLed tool. The watchdog
//! is a forked copy of the tool that never changes its credentials and never execs. It blocks
//! every signal it can, holds a pidfd of the process it guards (a pidfd cannot be misdirected
//! to a process that reused the PID), and waits on a pipe whose write end only the tool holds.
//! When the pipe reports the tool's end without a farewell, it SIGKILLs the guarded process
//! (the init of a PID namespace takes the whole namespace with it), and then its own process
//! group, which the tool's `-o` hooks join with whatever they started in the background.
//!
//! A tool that ends normally says farewell: the watchdog then ends without killing anything,
//! and the tool reaps it.

use crate::process;
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The message that makes the watchdog end quietly.
const FAREWELL: u8 = b'F';
/// The message that names the process to guard: this tag, then its PID (4 bytes, native order).
const GUARD: u8 = b'G';
/// Also kill the guarded process's group, if it leads one (`GUARD_WITH_GROUP`, then the PID).
const GUARD_WITH_GROUP: u8 = b'g';

/// A running watchdog, the tool's child. Dropping it says farewell and reaps it.
pub struct Watchdog {
    pid: Pid,
    /// The tool's end of the pipe the watchdog reads; closing it without a farewell (the
    /// tool's death closes it) makes the watchdog kill.
    orders: Option<OwnedFd>,
    /// The watchdog's answers to [`Watchdog::guard`].
    answers: OwnedFd,
}

impl Watchdog {
    /// Starts a watchdog in the current namespaces, guarding nothing yet. It leads a process
    /// group of its own (see [`Watchdog::process_group`]). Call it while single-threaded.
    pub fn start() -> Result<Watchdog> {
        let flags = nix::fcntl::OFlag::O_CLOEXEC;
        let (orders_read, orders) = nix::unistd::pipe2(flags).context("creating a pipe")?;
        let (answers, answers_write) = nix::unistd::pipe2(flags).context("creating a pipe")?;
        let keep = [orders_read.as_raw_fd(), answers_write.as_raw_fd()];
        let pid = process::spawn_keeping_signals(0, || {
            watch(keep[0], keep[1]);
        })
        .map_err(|e| anyhow::anyhow!("starting the watchdog: {}", e.desc()))?;
        // Also from here, as shells do, so that the group exists before a hook joins it
        // whichever of the two runs first. EACCES: the child did it already... and exec'd,
        // which it never does; ESRCH: it died, which guard() reports.
        let _ = nix::unistd::setpgid(pid, pid);
        Ok(Watchdog {
            pid,
            orders: Some(orders),
            answers,
        })
    }

    /// The watchdog's process group, for the hooks to join: it is killed with the guarded
    /// process when the tool dies. The watchdog itself keeps the group's ID from being reused.
    pub fn process_group(&self) -> Pid {
        self.pid
    }

    /// Guards `target`, a child of the caller that is held (not yet let go, so that it cannot
    /// have ended and been reaped): from now on the tool's death kills it, and, with
    /// `with_group`, its process group if it leads one then.
    pub fn guard(&self, target: Pid, with_group: bool) -> Result<()> {
        let orders = self.orders.as_ref().expect("guard after farewell");
        let mut message = [0u8; 5];
        message[0] = if with_group { GUARD_WITH_GROUP } else { GUARD };
        message[1..].copy_from_slice(&target.as_raw().to_ne_bytes());
        nix::unistd::write(orders, &message).context("instructing the watchdog")?;
        let mut answer = [0u8; 4];
        let got = read_full(self.answers.as_raw_fd(), &mut answer);
        if got != answer.len() {
            bail!("the watchdog ended unexpectedly");
        }
        match i32::from_ne_bytes(answer) {
            0 => Ok(()),
            errno => Err(Errno::from_raw(errno)).context("opening a pidfd of the guarded process"),
        }
    }

    /// Tells the watchdog that the tool ends normally, and reaps it.
    fn farewell(&mut self) {
        if let Some(orders) = self.orders.take() {
            let _ = nix::unistd::write(&orders, &[FAREWELL]);
        }
        while let Err(Errno::EINTR) = nix::sys::wait::waitpid(self.pid, None) {}
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.farewell();
    }
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
fn watch(orders: RawFd, answers: RawFd) -> ! {
    // SAFETY: plain system calls on integers and on a sigset on this stack; this process is a
    // single-threaded copy of the tool that only ever reads, signals and exits.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        libc::setpgid(0, 0);
    }
    close_all_but(&[orders, answers]);
    let parent = nix::unistd::getppid();
    let mut pidfd: Option<OwnedFd> = None;
    let mut with_group = false;
    let mut guarded = 0;
    loop {
        let mut tag = [0u8; 1];
        if read_full(orders, &mut tag) != 1 {
            break;
        }
        match tag[0] {
            FAREWELL => exit(0),
            GUARD | GUARD_WITH_GROUP => {
                let mut pid = [0u8; 4];
                if read_full(orders, &mut pid) != 4 {
                    break;
                }
                guarded = i32::from_ne_bytes(pid);
                with_group = tag[0] == GUARD_WITH_GROUP;
                let answer = match pidfd_open(guarded) {
                    Ok(fd) => {
                        pidfd = Some(fd);
                        0
                    }
                    Err(e) => e as i32,
                };
                // The PID named the tool's held child only while the tool lives: if it died
                // meanwhile, the child may have ended, been reaped and its PID reused. A held
                // child ends by itself when the tool dies, so there is nothing to kill then.
                if nix::unistd::getppid() != parent {
                    exit(0);
                }
                // SAFETY: writes 4 bytes from a local array.
                unsafe { libc::write(answers, answer.to_ne_bytes().as_ptr().cast(), 4) };
            }
            _ => break,
        }
    }
    // The tool is gone without a farewell.
    if let Some(pidfd) = &pidfd {
        if with_group && pidfd_alive(pidfd) {
            // Alive, so its PID (and a group it leads) cannot have been reused.
            // SAFETY: getpgid and kill take integers.
            unsafe {
                if libc::getpgid(guarded) == guarded {
                    libc::kill(-guarded, libc::SIGKILL);
                }
            }
        }
        pidfd_kill(pidfd);
    }
    // Last, since it ends the watchdog too: the hooks and what they left running.
    // SAFETY: kill takes integers; 0 is our own process group.
    unsafe { libc::kill(0, libc::SIGKILL) };
    exit(0)
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
            // SAFETY: close_range only closes descriptors of this process.
            unsafe { libc::close_range(from, fd as u32 - 1, 0) };
        }
        from = fd as u32 + 1;
    }
    // SAFETY: as above.
    unsafe { libc::close_range(from, u32::MAX, 0) };
}

fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor we then own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the descriptor was just created and is owned by nothing else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) })
}

fn pidfd_signal(pidfd: &OwnedFd, signal: i32) -> bool {
    // SAFETY: pidfd_send_signal with a null siginfo behaves as kill(2) on the pidfd's process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    ret == 0
}

fn pidfd_alive(pidfd: &OwnedFd) -> bool {
    pidfd_signal(pidfd, 0)
}

fn pidfd_kill(pidfd: &OwnedFd) {
    pidfd_signal(pidfd, libc::SIGKILL);
}
