//! Console emulation: a pty whose slave is the container's /dev/console and whose master the
//! supervisor relays to and from its own stdin and stdout; and the same relay for the pty a
//! command of pseudo or inject gets in place of the caller's terminal (see crate::session).
//!
//! It relays bytes and the window size and restores the caller's terminal mode; it must not wait
//! for, reap or signal the processes on the other side (supervise owns that), except the
//! console escape's kill of init.

use crate::supervise::{Event, Supervisor};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, PtyMaster};
use nix::sys::termios::{self, LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices, Termios};
use nix::unistd::{getpgrp, isatty, tcgetpgrp, Pid};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Relay buffer: large, so a busy container costs few system calls per megabyte.
const BUFFER: usize = 256 * 1024;

/// The escape key, ^] (as in telnet and systemd-nspawn): pressed [`ESCAPE_PRESSES`] times within
/// [`ESCAPE_WINDOW`], it kills the container, whatever runs in it.
pub const ESCAPE_KEY: u8 = 0x1d;
pub const ESCAPE_PRESSES: u32 = 3;
pub const ESCAPE_WINDOW: Duration = Duration::from_secs(1);

/// The pty pair of a container's console, or of a command's terminal.
pub struct Console {
    master: PtyMaster,
    slave: File,
    slave_path: PathBuf,
    /// ^] ^] ^] kills the child (see [`Console::with_escape`]).
    escape: bool,
    /// The descriptor the relay writes the pty's output to: stdout for a container's console;
    /// for a command's terminal, the first of stdout, stderr and stdin that is a terminal.
    output: i32,
    /// The caller's terminal stays as it is while input is relayed, rather than in raw mode:
    /// for a command's terminal when some of stdin, stdout and stderr are not terminals (a
    /// pipeline, as `inject PID cmd | less`, whose other programs may set the terminal's modes
    /// themselves; sudo does the same). The terminal then edits and echoes lines and sends ^C
    /// as signals itself, and the pty neither echoes nor processes output again.
    cooked: bool,
}

/// Whether standard descriptor `fd` is a terminal.
fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

impl Console {
    /// A console of this pair, its slave given the size of the caller's terminal.
    fn sized(
        master: PtyMaster,
        slave: File,
        slave_path: PathBuf,
        output: i32,
        cooked: bool,
    ) -> Console {
        let console = Console {
            master,
            slave,
            slave_path,
            escape: false,
            output,
            cooked,
        };
        console.copy_size();
        console
    }

    /// Opens a pty and gives its slave the host terminal's settings and size. Output that does
    /// not go to a terminal passes unchanged (no "\n" to "\r\n"), so pipes and files see the
    /// container's bytes.
    ///
    /// Input that does not come from a terminal does not go through the console at all (see
    /// [`Console::attach`]): a tty would edit it (line length limit, ^C, ^S, ^D, "\r") and has
    /// no end of file that a reader already waiting can see.
    pub fn open() -> Result<Console> {
        let (master, slave, slave_path) = open_pty()?;
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let mut settings = match termios::tcgetattr(stdin.as_fd()) {
            Ok(host) => host,
            Err(_) => termios::tcgetattr(&slave).context("reading console settings")?,
        };
        if !isatty(stdout.as_fd()).unwrap_or(false) {
            settings.output_flags.remove(OutputFlags::OPOST);
        }
        termios::tcsetattr(&slave, SetArg::TCSANOW, &settings).context("setting up the console")?;
        Ok(Console::sized(master, slave, slave_path, 1, false))
    }

    /// Opens a pty for a command whose caller has a terminal among stdin, stdout and stderr
    /// (see [`Console::attach_in_place_of_terminals`]), with that terminal's settings and size.
    /// What the command writes to it is relayed to the caller's terminal. Input is relayed
    /// from stdin if it is a terminal: in raw mode when all three are terminals, else as the
    /// terminal delivers it (see [`Console::cooked`]). Where the caller's terminal processes
    /// output itself (not in raw mode), the pty does not.
    pub fn for_terminals() -> Result<Console> {
        let (master, slave, slave_path) = open_pty()?;
        let Some(output) = [1, 2, 0].into_iter().find(|&fd| is_terminal(fd)) else {
            bail!("opening a pty for the command: none of stdin, stdout and stderr is a terminal");
        };
        let caller = [0, 1, 2].into_iter().find_map(|fd| {
            // SAFETY: a standard descriptor, open for the whole life of the process.
            termios::tcgetattr(unsafe { BorrowedFd::borrow_raw(fd) }).ok()
        });
        let mut settings = match caller {
            Some(settings) => settings,
            None => termios::tcgetattr(&slave).context("reading terminal settings")?,
        };
        let cooked = !(0..=2).all(is_terminal);
        if cooked {
            settings.output_flags.remove(OutputFlags::OPOST);
            settings.local_flags.remove(
                LocalFlags::ECHO | LocalFlags::ECHOE | LocalFlags::ECHOK | LocalFlags::ECHONL,
            );
        }
        termios::tcsetattr(&slave, SetArg::TCSANOW, &settings)
            .context("setting up the command's terminal")?;
        Ok(Console::sized(master, slave, slave_path, output, cooked))
    }

    /// The console of a pty opened by someone else, who sent its master here (an OCI
    /// container's terminal, which `contain-oci run` relays): its slave is reached from the
    /// master (TIOCGPTPEER), whatever mount namespace its devpts belongs to. The relay then
    /// works as for a container's console.
    pub fn of_master(master: std::os::fd::OwnedFd) -> Result<Console> {
        use std::os::fd::FromRawFd;
        // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor of the peer or -1.
        let slave = unsafe {
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if slave < 0 {
            return Err(Errno::last()).context("reaching the terminal's slave");
        }
        // SAFETY: the descriptor was just made for us alone.
        let slave = unsafe { File::from_raw_fd(slave) };
        // SAFETY: `master` is a pty master (the caller received it as one); PtyMaster owns it.
        let master = unsafe { PtyMaster::from_owned_fd(master) };
        let slave_path = ptsname_r(&master).map(PathBuf::from).unwrap_or_default();
        Ok(Console::sized(master, slave, slave_path, 1, false))
    }

    /// Makes [`ESCAPE_KEY`] typed [`ESCAPE_PRESSES`] times within [`ESCAPE_WINDOW`] kill the
    /// child the relay waits for: a container's console, whose init may ignore every signal
    /// and key. (A command's own pty under pseudo or inject has no such escape, as under sudo.)
    pub fn with_escape(self) -> Console {
        Console {
            escape: true,
            ..self
        }
    }

    /// The slave's path on the host, to bind at the container's /dev/console.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }

    /// Gives the slave to the host uid and gid that container root maps to, so that container
    /// root owns /dev/console and may open it. The pty belongs to its opener: for real root,
    /// host root, which no default map lets into the container (it shows there as nobody,
    /// and nobody inside may open it). Without the privilege to give it away, the console
    /// stays the caller's: then it is container root's unless -u maps root elsewhere.
    pub fn give_to(&self, uid: u32, gid: u32) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = self
            .slave
            .metadata()
            .context("reading the console's owner")?;
        if meta.uid() == uid && meta.gid() == gid {
            return Ok(());
        }
        match nix::unistd::fchown(
            &self.slave,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        ) {
            Ok(()) | Err(Errno::EPERM) => Ok(()),
            Err(e) => Err(e)
                .with_context(|| format!("giving {} to {uid}:{gid}", self.slave_path.display())),
        }
    }

    /// Makes the slave the calling process's controlling terminal and its stdin, stdout and
    /// stderr. For the container's init, in a new session. When the supervisor's stdin is not a
    /// terminal (a pipe, a file), init keeps it as its stdin, so its bytes and its end arrive
    /// exactly.
    pub fn attach(&self) -> Result<()> {
        self.take_as_controlling_terminal()?;
        let first = if self.relays_input() { 0 } else { 1 };
        for target in first..=2 {
            self.put_in_place_of(target)?;
        }
        Ok(())
    }

    /// For a command of pseudo or inject (see crate::session): the pty becomes the calling
    /// process's controlling terminal, in a new session, and replaces those of stdin, stdout
    /// and stderr that are terminals; pipes and files stay as they are.
    pub fn attach_in_place_of_terminals(&self) -> Result<()> {
        let terminals: Vec<i32> = (0..=2).filter(|&fd| is_terminal(fd)).collect();
        self.take_as_controlling_terminal()?;
        for target in terminals {
            self.put_in_place_of(target)?;
        }
        Ok(())
    }

    /// Starts a session with the slave as its controlling terminal.
    fn take_as_controlling_terminal(&self) -> Result<()> {
        nix::unistd::setsid().context("starting a session for the console")?;
        // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session)
        // and only changes this process's controlling terminal.
        let ret = unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
        if ret != 0 {
            return Err(Errno::last()).context("making the console the controlling terminal");
        }
        Ok(())
    }

    /// Makes standard descriptor `target` the slave.
    fn put_in_place_of(&self, target: i32) -> Result<()> {
        // SAFETY: dup2 onto 0, 1 and 2 replaces the standard descriptors, which this process
        // owns and which nothing in Rust holds a reference to.
        if unsafe { libc::dup2(self.slave.as_raw_fd(), target) } < 0 {
            return Err(Errno::last()).context("connecting the console");
        }
        Ok(())
    }

    /// True when input is typed on a terminal and goes to the container through the console.
    fn relays_input(&self) -> bool {
        isatty(std::io::stdin().as_fd()).unwrap_or(false)
    }

    /// Gives the console the size of the host terminal (stdin's, else stdout's, else
    /// stderr's), if any.
    fn copy_size(&self) {
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        for fd in [0, 1, 2] {
            // SAFETY: TIOCGWINSZ writes a winsize into `size`, which is valid for writes.
            if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 {
                // SAFETY: TIOCSWINSZ reads a winsize from `size`.
                unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
                return;
            }
        }
    }

    /// Relays between the supervisor's stdin and the console's output descriptor (stdout for
    /// a container) and the console until `child` ends, and returns the child's status. Input
    /// comes from a terminal on stdin only while the tool is the terminal's foreground job
    /// (a job in the background would be stopped for reading it), with the terminal in raw
    /// mode (restored on every way out); a tool started in the background begins to relay
    /// once `fg` continues it. End of file on stdin becomes end of file for the reader in
    /// the container.
    pub fn relay(&self, supervisor: &Supervisor, child: Pid) -> Result<i32> {
        let stdin = std::io::stdin();
        // SAFETY: a standard descriptor, open for the whole life of the process.
        let terminal: BorrowedFd<'static> = unsafe { BorrowedFd::borrow_raw(0) };
        // Some once input is relayed; restores the terminal's settings when dropped.
        let mut input_mode = None;
        let input_terminal = self.relays_input();
        let take_input = |mode: &mut Option<RawMode<'static>>| {
            if mode.is_none() && input_terminal && in_foreground(terminal) {
                *mode = if self.cooked {
                    Some(RawMode::unchanged(terminal))
                } else {
                    RawMode::enter(terminal)
                };
            }
        };
        set_nonblocking(self.master.as_fd())?;
        // The terminal may have changed size while the container started.
        self.copy_size();
        // SAFETY: a standard descriptor, open for the whole life of the process.
        let output = unsafe { BorrowedFd::borrow_raw(self.output) };
        let mut relay = Relay {
            master: self.master.as_fd(),
            destination: output,
            line_editing: self.cooked.then(|| self.slave.as_fd()),
            input: Vec::with_capacity(BUFFER),
            output: vec![0; BUFFER],
            stdin_open: input_terminal,
            stdout_open: true,
            escapes: 0,
            first_escape: Instant::now(),
        };
        loop {
            // A job in the background looks again now and then whether it is in the
            // foreground: a shell's `fg` of a running job (bash's) sends it no signal.
            take_input(&mut input_mode);
            let mut fds = vec![PollFd::new(supervisor.fd(), PollFlags::POLLIN)];
            let master_events = if relay.input.is_empty() {
                PollFlags::POLLIN
            } else {
                PollFlags::POLLIN | PollFlags::POLLOUT
            };
            fds.push(PollFd::new(relay.master, master_events));
            let watch_stdin = relay.stdin_open && relay.input.is_empty() && input_mode.is_some();
            if watch_stdin {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            let waiting_for_foreground = input_mode.is_none() && relay.stdin_open;
            let timeout = if waiting_for_foreground {
                shorter(supervisor.poll_timeout(), FOREGROUND_CHECK)
            } else {
                supervisor.poll_timeout()
            };
            let woken = match poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("waiting on the console"),
            };
            let ready = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
            let (signals, master, input) = (
                ready(0),
                ready(1),
                if watch_stdin {
                    ready(2)
                } else {
                    PollFlags::empty()
                },
            );
            if master.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                relay.drain_output();
            }
            let hung_up = input.contains(PollFlags::POLLHUP);
            if !input.is_empty() && relay.read_input(hung_up) && self.escape {
                // ^] ^] ^]: the way out that always works, even when nothing inside answers.
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            if !relay.input.is_empty() {
                relay.write_input()?;
            }

            // A timeout means the grace period after a stopping signal has run out (or it is
            // time to look for the foreground again).
            if !signals.is_empty() || woken == 0 {
                match supervisor.handle(child)? {
                    Event::Exited(code) => {
                        relay.drain_output();
                        return Ok(code);
                    }
                    Event::Resized => self.copy_size(),
                    Event::Nothing => {}
                }
            }
            if master.contains(PollFlags::POLLHUP) && !master.contains(PollFlags::POLLIN) {
                // Nobody holds the slave open but us (init closed its console): wait for the
                // end on signals alone rather than spin on a hung-up master.
                return supervisor.wait(child);
            }
        }
    }
}

/// How often a relay whose tool runs in the background looks whether it has been brought to
/// the foreground, to start relaying what is typed.
const FOREGROUND_CHECK: Duration = Duration::from_millis(100);

/// The shorter of a poll timeout and `limit`.
fn shorter(timeout: PollTimeout, limit: Duration) -> PollTimeout {
    let limit = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    if timeout == PollTimeout::NONE || timeout > limit {
        limit
    } else {
        timeout
    }
}

/// The state of one relay loop.
struct Relay<'a> {
    master: BorrowedFd<'a>,
    /// Where the pty's output goes.
    destination: BorrowedFd<'a>,
    /// The pty's slave, when the caller's terminal edits lines itself (see
    /// [`Console::cooked`]): its end-of-file character is passed on for ^D.
    line_editing: Option<BorrowedFd<'a>>,
    input: Vec<u8>,
    output: Vec<u8>,
    stdin_open: bool,
    stdout_open: bool,
    /// ^] presses in a row so far, and when the first of them came.
    escapes: u32,
    first_escape: Instant,
}

impl Relay<'_> {
    /// Copies everything the container has written so far to stdout.
    fn drain_output(&mut self) {
        loop {
            match nix::unistd::read(self.master, &mut self.output) {
                Ok(0) | Err(Errno::EAGAIN) | Err(Errno::EIO) => return,
                Ok(n) => {
                    if self.stdout_open && write_all(self.destination, &self.output[..n]).is_err() {
                        // Nobody reads our output any more: keep draining so the container
                        // does not block, and let it finish.
                        self.stdout_open = false;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    /// Reads what the terminal has typed. A terminal that hangs up (`hung_up`: poll said so)
    /// or ends stops the input; ^D on a terminal that edits lines (read() returns what was
    /// typed so far, or nothing) passes the pty's end-of-file character on too, so that the
    /// reader inside sees the same.
    /// True when the escape was typed: [`ESCAPE_PRESSES`] times ^] and nothing else, within
    /// [`ESCAPE_WINDOW`] of the first. The keys still reach the container.
    fn read_input(&mut self, hung_up: bool) -> bool {
        self.input.resize(BUFFER, 0);
        let read = nix::unistd::read(std::io::stdin().as_fd(), &mut self.input);
        let end_of_file = |slave: BorrowedFd<'_>| {
            let stdin = std::io::stdin();
            let editing = termios::tcgetattr(stdin.as_fd())
                .is_ok_and(|t| t.local_flags.contains(LocalFlags::ICANON));
            let eof = termios::tcgetattr(slave)
                .map(|t| t.control_chars[SpecialCharacterIndices::VEOF as usize]);
            eof.ok().filter(|_| editing)
        };
        match (read, self.line_editing) {
            (Ok(n), Some(slave)) if !hung_up && (n == 0 || self.input[n - 1] != b'\n') => {
                self.input.truncate(n);
                if let Some(eof) = end_of_file(slave) {
                    self.input.push(eof);
                }
                false
            }
            (read, _) => self.take_read(read),
        }
    }

    /// Keeps what [`Relay::read_input`] read as it came, and counts the escapes in it.
    fn take_read(&mut self, read: nix::Result<usize>) -> bool {
        match read {
            Ok(0) | Err(Errno::EIO) | Err(Errno::EBADF) => {
                self.input.clear();
                self.stdin_open = false;
                false
            }
            Ok(n) => {
                self.input.truncate(n);
                self.count_escapes(Instant::now())
            }
            Err(_) => {
                self.input.clear();
                false
            }
        }
    }

    fn count_escapes(&mut self, now: Instant) -> bool {
        for &byte in &self.input {
            if byte != ESCAPE_KEY {
                self.escapes = 0;
            } else if self.escapes == 0 || now - self.first_escape > ESCAPE_WINDOW {
                self.escapes = 1;
                self.first_escape = now;
            } else {
                self.escapes += 1;
                if self.escapes >= ESCAPE_PRESSES {
                    return true;
                }
            }
        }
        false
    }

    /// Writes queued input as far as the console takes it without blocking.
    fn write_input(&mut self) -> Result<()> {
        match nix::unistd::write(self.master, &self.input) {
            Ok(n) => {
                self.input.drain(..n);
                Ok(())
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(()),
            Err(Errno::EIO) => {
                self.input.clear();
                Ok(())
            }
            Err(e) => Err(e).context("writing to the console"),
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Opens a pty pair: the master, the slave (neither becomes our controlling terminal) and
/// the slave's path.
fn open_pty() -> Result<(PtyMaster, File, PathBuf)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening a pty")?;
    grantpt(&master).context("granting the pty")?;
    unlockpt(&master).context("unlocking the pty")?;
    let slave_path = PathBuf::from(ptsname_r(&master).context("naming the pty")?);
    let slave = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&slave_path)
        .with_context(|| format!("opening {}", slave_path.display()))?;
    Ok((master, slave, slave_path))
}

/// Whether we may read the terminal `fd` without being stopped: it is not our controlling
/// terminal, or our process group is its foreground group.
fn in_foreground(fd: BorrowedFd<'_>) -> bool {
    match tcgetpgrp(fd) {
        Ok(group) => group == getpgrp(),
        Err(_) => true,
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).context("reading pty flags")?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("setting pty flags")?;
    Ok(())
}

/// The host terminal's mode while input is relayed: raw, so every key reaches the container
/// (dropping it restores the saved settings), or left as it was.
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    /// The settings to restore; None for a terminal left as it was.
    saved: Option<Termios>,
}

impl<'a> RawMode<'a> {
    /// Switches `fd` to raw mode if it is a terminal.
    pub fn enter(fd: BorrowedFd<'a>) -> Option<RawMode<'a>> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode {
            fd,
            saved: Some(saved),
        })
    }

    /// Leaves `fd` as it is: input is relayed as the terminal delivers it (see
    /// [`Console::cooked`]), and nothing is restored.
    fn unchanged(fd: BorrowedFd<'a>) -> RawMode<'a> {
        RawMode { fd, saved: None }
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(self.fd, SetArg::TCSADRAIN, saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(master: BorrowedFd<'_>) -> Relay<'_> {
        Relay {
            master,
            destination: master,
            line_editing: None,
            input: Vec::new(),
            output: Vec::new(),
            stdin_open: true,
            stdout_open: true,
            escapes: 0,
            first_escape: Instant::now(),
        }
    }

    #[test]
    fn three_escapes_within_a_second_and_nothing_between() {
        let stdin = std::io::stdin();
        let mut relay = relay(stdin.as_fd());
        let start = Instant::now();
        let typed = |relay: &mut Relay, bytes: &[u8], at: Duration| {
            relay.input = bytes.to_vec();
            relay.count_escapes(start + at)
        };
        assert!(typed(&mut relay, b"\x1d\x1d\x1d", Duration::ZERO));

        let mut relay = self::relay(stdin.as_fd());
        assert!(!typed(&mut relay, b"\x1d\x1dx\x1d", Duration::ZERO));
        assert!(!typed(&mut relay, b"\x1d", Duration::from_millis(100)));
        assert!(typed(&mut relay, b"\x1d", Duration::from_millis(900)));

        // Presses spread over more than a second start the count again.
        let mut relay = self::relay(stdin.as_fd());
        assert!(!typed(&mut relay, b"\x1d\x1d", Duration::ZERO));
        assert!(!typed(&mut relay, b"\x1d", Duration::from_millis(1500)));
        assert!(!typed(&mut relay, b"\x1d", Duration::from_millis(1600)));
        assert!(typed(&mut relay, b"\x1d", Duration::from_millis(1700)));
    }
}
