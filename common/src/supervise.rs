//! The supervisor: the tool's process that waits for its child, passes signals on and turns
//! the child's end into the tool's exit status.

use crate::process;
use anyhow::{Context, Result};
use nix::errno::Errno;
pub use nix::sys::signal::Signal;
use nix::sys::signal::{kill, SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd};

/// Signals a user sends a container to ask something of its init: stop (TERM), halt or
/// reboot (INT, as ctrl-alt-del), reload (HUP), power failure (PWR, which sysvinit turns into
/// a shutdown and LXC sends to halt a container), and the user-defined ones.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPWR,
];

/// What a supervisor that shares its terminal with the child passes on: ^C and ^\ reach the
/// child from the terminal itself, so passing SIGINT and SIGQUIT on would deliver them twice.
pub const FORWARDED_SHARING_TERMINAL: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// What a batch of signals meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The child ended with this shell-style status.
    Exited(i32),
    /// The terminal changed size.
    Resized,
    /// Nothing the caller must act on (signals were forwarded).
    Nothing,
}

/// Receives the supervisor's signals through a signalfd, so that one poll loop serves signals
/// and the console alike and no handler runs at an awkward moment.
pub struct Supervisor {
    signals: SignalFd,
    forward: SigSet,
    killed_by: Cell<Option<Signal>>,
    /// As PID 1 of a namespace, every orphan becomes our child and must be reaped.
    reaps_orphans: bool,
    /// Forwarded signals that go to the child's whole process group, as a terminal sends
    /// them (see [`Supervisor::passing_to_group`]).
    to_group: SigSet,
}

impl Supervisor {
    /// Blocks the forwarded signals, SIGCHLD and SIGWINCH. Create it before spawning the child:
    /// a signal that arrives in between is then held rather than lost. `forward` are the ones
    /// passed on to the child; the rest of [`FORWARDED`] are held and ignored (for a child that
    /// shares our terminal and gets ^C from it directly).
    pub fn with_forwarded(forward: &[Signal]) -> Result<Supervisor> {
        let mut blocked = SigSet::empty();
        for sig in FORWARDED.iter().chain(&[Signal::SIGCHLD, Signal::SIGWINCH]) {
            blocked.add(*sig);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)
            .context("blocking signals")?;
        let signals =
            SignalFd::with_flags(&blocked, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                .context("creating a signalfd")?;
        let mut set = SigSet::empty();
        for sig in forward {
            set.add(*sig);
        }
        Ok(Supervisor {
            signals,
            forward: set,
            killed_by: Cell::new(None),
            reaps_orphans: false,
            to_group: SigSet::empty(),
        })
    }

    /// A supervisor for PID 1 of a namespace, which reaps every child that ends, not only the
    /// one it waits for: orphans of the namespace are reparented to it. Only for a process
    /// whose other children nobody else waits for.
    pub fn reaping_orphans(forward: &[Signal]) -> Result<Supervisor> {
        Ok(Supervisor {
            reaps_orphans: true,
            ..Self::with_forwarded(forward)?
        })
    }

    /// Passes `signals` on to the child's whole process group rather than to the child alone:
    /// for a child that leads a session of its own, away from the caller's terminal, so that
    /// ^C and ^\ (which the terminal now sends to the tool alone) reach every process they
    /// would have reached in the terminal's foreground group.
    pub fn passing_to_group(mut self, signals: &[Signal]) -> Supervisor {
        for sig in signals {
            self.to_group.add(*sig);
        }
        self
    }

    /// A supervisor that passes every signal in [`FORWARDED`] on.
    pub fn new() -> Result<Supervisor> {
        Self::with_forwarded(&FORWARDED)
    }

    /// Readable when signals are pending: poll it beside other descriptors.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.signals.as_fd()
    }

    /// Handles pending signals: forwards those to forward to `child`, and reaps it if it ended.
    pub fn handle(&self, child: Pid) -> Result<Event> {
        let mut event = Event::Nothing;
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => {
                    let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    if sig == Signal::SIGWINCH && event == Event::Nothing {
                        event = Event::Resized;
                    } else if self.forward.contains(sig) {
                        // The child may be gone already; its SIGCHLD is then pending too.
                        let group = Pid::from_raw(-child.as_raw());
                        // Before the child has started its session there is no such group.
                        if !self.to_group.contains(sig) || kill(group, sig).is_err() {
                            let _ = kill(child, sig);
                        }
                    }
                }
                Ok(None) | Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("reading signals"),
            }
        }
        // SIGCHLD may be merged or may come from other children (helpers, orphans).
        let reaped = if self.reaps_orphans {
            None
        } else {
            Some(child)
        };
        loop {
            match waitpid(reaped, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return Ok(event),
                Ok(status) if status.pid() == Some(child) => {
                    if let Some(code) = process::exit_code(status) {
                        self.killed_by.set(match status {
                            WaitStatus::Signaled(_, sig, _) => Some(sig),
                            _ => None,
                        });
                        return Ok(Event::Exited(code));
                    }
                }
                // An orphan reaped; look for more.
                Ok(_) if self.reaps_orphans => {}
                Ok(_) => return Ok(event),
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) if !self.reaps_orphans => {
                    return Ok(Event::Exited(crate::errors::FAILURE))
                }
                Err(_) => return Ok(event),
            }
        }
    }

    /// The signal that killed the child, once it has ended of one.
    pub fn killed_by(&self) -> Option<Signal> {
        self.killed_by.get()
    }

    /// Waits for `child` to end, forwarding signals meanwhile, and returns its status.
    pub fn wait(&self, child: Pid) -> Result<i32> {
        loop {
            if let Event::Exited(code) = self.handle(child)? {
                return Ok(code);
            }
            let mut fds = [nix::poll::PollFd::new(
                self.fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e).context("waiting for signals"),
            }
        }
    }
}
