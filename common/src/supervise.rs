//! The supervisor: the tool's process that waits for its child, passes signals on and turns
//! the child's end into the tool's exit status.
//!
//! It must not lose a signal that comes while the child starts, and must not sleep or poll in place
//! of waiting for the next signal or the child's end.

use crate::process;
use crate::watchdog::{Guard, Watchdog};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::poll::PollTimeout;
pub use nix::sys::signal::Signal;
use nix::sys::signal::{kill, SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

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

/// The signals that ask a container to end (kill and timeout send TERM, ^C is INT, a terminal
/// that hangs up sends HUP, ^\ is QUIT, lxc-stop sends PWR): passed on like the others, they
/// also start the grace period after which a supervisor with a stop timeout kills the child.
pub const STOPPING: [Signal; 5] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGPWR,
];

/// si_code of a signal the kernel generated (a terminal's ^C); kill(2), sigqueue(3) and
/// tgkill(2) give SI_USER (0) or negative codes.
const SI_KERNEL: i32 = 0x80;

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
    /// How long the child may take to end after a stopping signal before it is killed.
    stop_timeout: Option<Duration>,
    /// The first stopping signal passed on, and when the grace period it started ends.
    stopping: Cell<Option<(Signal, Instant)>>,
    /// The stopping signal whose grace period ran out: the child was killed for it.
    stopped_by: Cell<Option<Signal>>,
    /// A SIGWINCH read while looking for signals during the start, still to be reported.
    resized: Cell<bool>,
    /// What the stopping signals become when passed on (see [`Supervisor::with_stop_signal`]).
    stop_signal: Option<i32>,
    /// The watchdog of the child, looked after at every SIGCHLD (see [`Supervisor::guarded_by`]).
    watchdog: RefCell<Option<Watchdog>>,
}

impl Supervisor {
    /// Blocks the forwarded signals, SIGCHLD and SIGWINCH. Create it before spawning the child:
    /// a signal that arrives in between is then held rather than lost. `forward` are the ones
    /// passed on to the child; the rest of [`FORWARDED`] are held and ignored.
    pub fn with_forwarded(forward: &[Signal]) -> Result<Supervisor> {
        let mut blocked = forwarded_set();
        blocked.add(Signal::SIGCHLD);
        blocked.add(Signal::SIGWINCH);
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
            stop_timeout: None,
            stopping: Cell::new(None),
            stopped_by: Cell::new(None),
            resized: Cell::new(false),
            stop_signal: None,
            watchdog: RefCell::new(None),
        })
    }

    /// Gives the child `grace` to end after the first stopping signal ([`STOPPING`]) it is
    /// passed, then kills it with SIGKILL: a PID 1 without a handler ignores the signal. The
    /// child's status then is 128+N for the stopping signal N, as if that had ended it.
    pub fn with_stop_timeout(self, grace: Duration) -> Supervisor {
        Supervisor {
            stop_timeout: Some(grace),
            ..self
        }
    }

    /// Passes every stopping signal ([`STOPPING`]) on to the child as signal number `sig`
    /// instead, to the child alone: the one its init takes as the request to shut down
    /// (systemd's SIGRTMIN+3, a number nix has no name for). `None` passes them on as they are.
    pub fn with_stop_signal(self, sig: Option<i32>) -> Supervisor {
        Supervisor {
            stop_signal: sig,
            ..self
        }
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

    /// Looks after `watchdog` while waiting: should it die, it is replaced, or the child is
    /// killed where it cannot be ([`Watchdog::keep_guarding`]), and a line says so.
    pub fn guarded_by(&self, watchdog: Watchdog) {
        *self.watchdog.borrow_mut() = Some(watchdog);
    }

    /// Takes the watchdog back, to drop it once the child has ended.
    pub fn take_watchdog(&self) -> Option<Watchdog> {
        self.watchdog.borrow_mut().take()
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
        let mut event = if self.resized.take() {
            Event::Resized
        } else {
            Event::Nothing
        };
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => {
                    let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    if sig == Signal::SIGWINCH && event == Event::Nothing {
                        event = Event::Resized;
                    } else if let Some(stop) = self
                        .stop_signal
                        .filter(|_| STOPPING.contains(&sig) && self.passes_on(sig, info.ssi_code))
                    {
                        send_raw(child, stop);
                        self.start_grace_period(sig);
                    } else if self.passes_on(sig, info.ssi_code) {
                        // The child may be gone already; its SIGCHLD is then pending too.
                        let group = Pid::from_raw(-child.as_raw());
                        // Before the child has started its session there is no such group.
                        if !self.to_group.contains(sig) || kill(group, sig).is_err() {
                            let _ = kill(child, sig);
                        }
                        // ^C or ^\ from a terminal the child shares (contain -c) reached the
                        // child too: one that it handles (an interactive shell) asks nothing
                        // of us. One it has no handler for was lost on a PID 1.
                        if info.ssi_code != SI_KERNEL || !catches(child, sig) {
                            self.start_grace_period(sig);
                        }
                    }
                }
                Ok(None) | Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("reading signals"),
            }
        }
        if let Some(watchdog) = self.watchdog.borrow_mut().as_mut() {
            match watchdog.keep_guarding()? {
                Guard::Kept => {}
                Guard::Replaced { ended, by } => crate::errors::warn(&format!(
                    "the watchdog (PID {ended}) has ended: PID {by} guards in its place"
                )),
                Guard::Lost { ended } => crate::errors::warn(&format!(
                    "the watchdog (PID {ended}) has ended: ending the command, which \
                     nothing would end if {} were killed",
                    crate::errors::tool()
                )),
            }
        }
        if let Some((sig, deadline)) = self.stopping.get() {
            if self.stopped_by.get().is_none() && Instant::now() >= deadline {
                self.stopped_by.set(Some(sig));
                let _ = kill(child, Signal::SIGKILL);
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
                        let killed_by = match status {
                            WaitStatus::Signaled(_, sig, _) => Some(sig),
                            _ => None,
                        };
                        self.killed_by.set(killed_by);
                        return Ok(Event::Exited(match (killed_by, self.stopped_by.get()) {
                            (Some(Signal::SIGKILL), Some(stop)) => 128 + stop as i32,
                            _ => code,
                        }));
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

    /// True if `sig` goes to the child: those of `forward` always, the rest of [`FORWARDED`]
    /// when a process sent them rather than the terminal (`code` is the signal's si_code).
    fn passes_on(&self, sig: Signal, code: i32) -> bool {
        self.forward.contains(sig) || (FORWARDED.contains(&sig) && code != SI_KERNEL)
    }

    fn start_grace_period(&self, sig: Signal) {
        if let Some(grace) = self.stop_timeout {
            if STOPPING.contains(&sig) && self.stopping.get().is_none() {
                self.stopping.set(Some((sig, Instant::now() + grace)));
            }
        }
    }

    /// How long a poll loop may sleep before [`Supervisor::handle`] has to run again: until
    /// the grace period ends, if one runs.
    pub fn poll_timeout(&self) -> PollTimeout {
        match self.stopping.get() {
            Some(_) if self.stopped_by.get().is_some() => PollTimeout::NONE,
            Some((_, deadline)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up, so that the loop does not wake just before the deadline.
                let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        }
    }

    /// The signal that killed the child, once it has ended of one.
    pub fn killed_by(&self) -> Option<Signal> {
        self.killed_by.get()
    }

    /// True once a stopping signal has been passed on to the child (which may still be
    /// ending): a restart asked for from inside is then not honoured.
    pub fn stop_requested(&self) -> bool {
        self.stopping.get().is_some()
    }

    /// For a start that is still under way (no child to pass signals on to yet): the first
    /// signal of [`FORWARDED`] that has arrived since the supervisor was made, if any. The
    /// start is then to be given up, with status 128+N. Reaping is left to the caller.
    pub fn interrupted(&self) -> Result<Option<Signal>> {
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGWINCH) => self.resized.set(true),
                    Ok(sig) if FORWARDED.contains(&sig) => return Ok(Some(sig)),
                    _ => {}
                },
                Ok(None) | Err(Errno::EAGAIN) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("reading signals"),
            }
        }
    }

    /// Waits for a helper of the start (a hook) to end, unless a signal of [`FORWARDED`]
    /// arrives first: then the helper's process group `group`, with whatever the helper
    /// started, is killed, the helper reaped and the signal returned.
    pub fn wait_helper(
        &self,
        helper: &mut std::process::Child,
        group: Pid,
    ) -> Result<std::result::Result<std::process::ExitStatus, Signal>> {
        loop {
            if let Some(status) = helper.try_wait().context("waiting for a helper")? {
                return Ok(Ok(status));
            }
            if let Some(sig) = self.interrupted()? {
                let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
                let _ = helper.wait();
                return Ok(Err(sig));
            }
            // SIGCHLD, which the signalfd receives, wakes us when the helper ends.
            self.sleep(PollTimeout::NONE)?;
        }
    }

    /// Sleeps until a signal is pending or `timeout` has passed.
    fn sleep(&self, timeout: PollTimeout) -> Result<()> {
        let mut fds = [nix::poll::PollFd::new(
            self.fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(e).context("waiting for signals"),
        }
    }

    /// Waits for `child` to end, forwarding signals meanwhile, and returns its status.
    pub fn wait(&self, child: Pid) -> Result<i32> {
        loop {
            if let Event::Exited(code) = self.handle(child)? {
                return Ok(code);
            }
            self.sleep(self.poll_timeout())?;
        }
    }
}

/// Blocks the signals of [`FORWARDED`] in the calling process, so that those sent to it
/// before it runs its command stay pending rather than being ignored, as they are by a PID 1
/// without handlers. [`crate::process::Exec::exec`] unblocks them again.
pub fn hold_forwarded() -> Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), None)
        .context("blocking signals")
}

/// The first signal of [`FORWARDED`] pending for the calling process (held by
/// [`hold_forwarded`]), if any.
pub fn pending_forwarded() -> Option<Signal> {
    let mut pending = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is given, which is valid for writes.
    if unsafe { libc::sigpending(pending.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful sigpending above.
    let pending = unsafe { pending.assume_init() };
    FORWARDED.iter().copied().find(|sig| {
        // SAFETY: sigismember only reads the initialised set.
        unsafe { libc::sigismember(&pending, *sig as i32) == 1 }
    })
}

/// Sends signal number `sig`, which may be one nix's [`Signal`] cannot name (a real-time
/// signal), to `pid`; it may be gone already.
fn send_raw(pid: Pid, sig: i32) {
    // SAFETY: kill takes integers and only sends a signal.
    unsafe { libc::kill(pid.as_raw(), sig) };
}

/// glibc's SIGRTMIN, which `RTMIN+N` counts from, as systemd (built with glibc) and podman do.
const RTMIN: i32 = 34;
/// The highest real-time signal.
const RTMAX: i32 = 64;

/// Parses a signal as `--stop-signal` takes it: a name with or without SIG (TERM, SIGPWR), in
/// any case, RTMIN+N or RTMAX-N (RTMIN being 34, glibc's, as systemd counts), or a number.
pub fn parse_signal(text: &str) -> std::result::Result<i32, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let invalid = || format!("{text:?} is not a signal (e.g. TERM, RTMIN+3, 37)");
    let number = if let Ok(n) = name.parse::<i32>() {
        n
    } else if let Some(rest) = name.strip_prefix("RTMIN") {
        match rest.strip_prefix('+') {
            Some(n) => RTMIN + n.parse::<i32>().map_err(|_| invalid())?,
            None if rest.is_empty() => RTMIN,
            None => return Err(invalid()),
        }
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        match rest.strip_prefix('-') {
            Some(n) => RTMAX - n.parse::<i32>().map_err(|_| invalid())?,
            None if rest.is_empty() => RTMAX,
            None => return Err(invalid()),
        }
    } else {
        format!("SIG{name}")
            .parse::<Signal>()
            .map_err(|_| invalid())? as i32
    };
    match number {
        // Not SIGKILL or SIGSTOP: init could not shut down on them.
        9 | 19 => Err(format!(
            "{text:?} cannot ask init to stop: it cannot be handled"
        )),
        1..=RTMAX => Ok(number),
        _ => Err(invalid()),
    }
}

/// True if process `pid` has a handler for `sig` (SigCgt in its /proc status).
fn catches(pid: Pid, sig: Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig as u32 - 1)) != 0)
}

fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("sigpwr"), Ok(libc::SIGPWR));
        assert_eq!(parse_signal("RTMIN+3"), Ok(37));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(crate::systemd::HALT_SIGNAL));
        assert_eq!(parse_signal("rtmax-1"), Ok(63));
        assert_eq!(parse_signal("37"), Ok(37));
        for bad in [
            "", "FOO", "RTMIN+x", "RTMIN3", "0", "65", "KILL", "9", "STOP", "-1",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn catches_reads_the_handlers_of_a_process() {
        // Rust's runtime ignores SIGPIPE: ignored is not caught. Nothing here handles SIGUSR2.
        let me = Pid::this();
        assert!(!catches(me, Signal::SIGPIPE));
        assert!(!catches(me, Signal::SIGUSR2));
    }
}
