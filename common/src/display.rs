//! A display of the container's own (`contain --gui`): an X server that shows on the caller's
//! display, started outside the container as the caller, and the one socket of it the
//! container gets. Xephyr shows it as a nested display in a window; xpra (a server with an
//! Xvfb of its own, and `xpra attach` on the caller's display) shows each of its windows as a
//! window of the caller's desktop.
//!
//! The server lives in namespaces of its own: a user namespace mapping one ID, container
//! root's on the host (the caller, unless the caller is root), as uid 0, so that it owns what
//! it creates; a mount namespace with a fresh tmpfs on /tmp and a private directory bound over
//! /tmp/.X11-unix; and a PID namespace whose init (the server) dies with the supervisor, so
//! that the server and every helper it starts end together. The X server (Xephyr, or xpra's
//! Xvfb) listens on neither TCP nor an abstract socket (`-nolisten tcp -nolisten local`), only
//! on its socket file in the private directory, and accepts only clients with a fresh random
//! MIT-MAGIC-COOKIE-1. MIT-SHM is off: it fails across the container's own IPC namespace.
//!
//! The order, in the supervisor: [`check`] the options before anything is created;
//! [`Display::start`] returns once the server is ready, which it says itself (Xephyr's
//! `-displayfd`; for xpra a command it runs once its client on the caller's display is
//! attached), no polling; the container's init calls [`Handoff::install`] while it builds the
//! root file system, which binds the socket at /tmp/.X11-unix/X0, writes the cookie file and
//! removes the private directory from the host; dropping the [`Display`] ends the server.
//!
//! Nothing inside can reach the host's X server: the socket path is not in the container's
//! mount namespace, the abstract socket belongs to the host's network namespace (so `--gui`
//! needs one of its own), and with `--net pasta` the routes to the host
//! ([`net::host_addresses`], [`net::prohibit_destinations`]) are closed.

use crate::idmap::{IdMap, IdMaps};
use crate::mount::{self, Rootfs};
use crate::net::{self, NetMode};
use crate::ns::Namespace;
use crate::process::{self, Exec};
use crate::userns::NsChild;
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The display's socket inside the container.
pub const SOCKET_INSIDE: &str = "/tmp/.X11-unix/X0";
/// The cookie file inside the container, on the same small tmpfs as the socket.
pub const XAUTHORITY_INSIDE: &str = "/tmp/.X11-unix/Xauthority";
/// `DISPLAY` inside the container.
pub const DISPLAY_INSIDE: &str = ":0";

/// The server's cookie file, on its own /tmp. X servers read it when the first client
/// connects, not at start: it must stay, and nothing else may see it.
const SERVER_COOKIE: &str = "/tmp/.contain-auth";
/// A copy of the caller's cookie file for the host display, on the server's own /tmp.
const HOST_COOKIE: &str = "/tmp/.contain-host-auth";

/// The xpra server's configuration directory (XDG_CONFIG_DIRS), on its own /tmp: the
/// system's /etc/xpra/conf.d would start an Xsession, and a user configuration is not read
/// for uid 0, which the server is in its namespace.
const XPRA_CONFIG_DIRS: &str = "/tmp/.contain-xdg";
/// What the server's /tmp may hold: the cookie, the sockets, xpra's configuration and logs,
/// which clients in the container can make grow. A tmpfs without a size may take half of the
/// machine's memory; this is /dev/shm's size.
const SERVER_TMP_SIZE: &str = mount::SHM_SIZE;
/// xpra's own sockets and runtime files, on the server's /tmp.
const XPRA_SOCKETS: &str = "/tmp/.contain-xpra";
/// The FIFO, in the socket directory, that says an xpra server has its first client: the
/// attach on the caller's display.
const XPRA_READY: &str = ".contain-ready";

/// What our xpra.conf overrides: the system's starts an Xsession (`start`).
const XPRA_CONF: &str = "start =\nstart-child =\nstart-after-connect =\n";

/// The kind of display server (`--gui MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GuiMode {
    /// A nested Xephyr server in a window on the caller's display.
    Xephyr,
    /// Seamless windows: an xpra server with its own Xvfb, attached to the caller's display.
    Xpra,
}

impl GuiMode {
    /// The program run, looked up in PATH.
    pub fn program(self) -> &'static str {
        match self {
            GuiMode::Xephyr => "Xephyr",
            GuiMode::Xpra => "xpra",
        }
    }

    /// The Debian packages it needs.
    pub fn packages(self) -> &'static str {
        match self {
            GuiMode::Xephyr => "Debian package xserver-xephyr",
            GuiMode::Xpra => "Debian packages xpra and python3-gi-cairo",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GuiMode::Xephyr => "xephyr",
            GuiMode::Xpra => "xpra",
        }
    }

    /// How long the server may take to accept clients: Xephyr takes a few tenths of a
    /// second; xpra, a Python program that starts an Xvfb and then attaches a client to the
    /// caller's display, one to three seconds. The limits leave room for a machine under
    /// heavy load (xpra was seen taking over 20 s at a load average of 18).
    pub fn ready_timeout(self) -> Duration {
        match self {
            GuiMode::Xephyr => Duration::from_secs(10),
            GuiMode::Xpra => Duration::from_secs(60),
        }
    }
}

impl fmt::Display for GuiMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The size of the display (`--gui-size WxH|full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuiSize {
    /// A window of this many pixels.
    Window { width: u32, height: u32 },
    /// The whole host screen.
    Full,
}

impl Default for GuiSize {
    fn default() -> GuiSize {
        GuiSize::Window {
            width: 1024,
            height: 768,
        }
    }
}

impl fmt::Display for GuiSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuiSize::Window { width, height } => write!(f, "{width}x{height}"),
            GuiSize::Full => f.write_str("full"),
        }
    }
}

impl FromStr for GuiSize {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<GuiSize> {
        if text == "full" {
            return Ok(GuiSize::Full);
        }
        let Some((w, h)) = text.split_once('x') else {
            bail!("'{text}' is not WIDTHxHEIGHT or full");
        };
        // X11 coordinates are 16-bit signed.
        let side = |word: &str| match word.parse::<u32>() {
            Ok(n) if (1..=32767).contains(&n) && word.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(anyhow!(
                "'{text}': '{word}' is not a size in pixels (1-32767)"
            )),
        };
        Ok(GuiSize::Window {
            width: side(w)?,
            height: side(h)?,
        })
    }
}

/// clap value parser for `--gui-size`.
pub fn parse_size(text: &str) -> Result<GuiSize, String> {
    text.parse::<GuiSize>().map_err(|e| format!("{e:#}"))
}

/// What `--gui` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gui {
    pub mode: GuiMode,
    pub size: GuiSize,
}

/// Checks, before anything is created, that a display can be started: the container has a
/// network namespace of its own (the abstract socket of the host's X server is reachable from
/// the host's), the caller has a display to show it on, and the server program is installed.
pub fn check(gui: &Gui, network: NetMode) -> Result<()> {
    if !network.new_namespace() {
        bail!(
            "--gui needs a network namespace of the container's own: in the host's (--net host, -n) the host's X server is reachable through its abstract socket"
        );
    }
    match std::env::var("DISPLAY") {
        Ok(display) if !display.is_empty() => {}
        _ => bail!(
            "--gui {} shows on the caller's X display, but DISPLAY is not set",
            gui.mode
        ),
    }
    program_path(gui.mode)?;
    if gui.mode == GuiMode::Xpra && !has_gi_cairo() {
        bail!("--gui xpra needs the Python module gi.cairo, which is not installed (Debian package python3-gi-cairo)");
    }
    Ok(())
}

/// Whether PyGObject's cairo support, which `xpra attach` needs (Debian's xpra does not
/// depend on it), is there: looked for where Debian installs it; true where that directory
/// does not exist (another layout, which we cannot check).
fn has_gi_cairo() -> bool {
    let Ok(entries) = fs::read_dir("/usr/lib/python3/dist-packages/gi") else {
        return true;
    };
    entries
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("_gi_cairo"))
}

fn program_path(mode: GuiMode) -> Result<PathBuf> {
    net::find_program(mode.program()).ok_or_else(|| {
        anyhow!(
            "--gui {mode} needs {}, which is not installed ({})",
            mode.program(),
            mode.packages()
        )
    })
}

/// A random MIT-MAGIC-COOKIE-1, fresh for every display.
#[derive(Clone)]
pub struct Cookie([u8; 16]);

impl Cookie {
    /// 16 bytes from the kernel's random source (getrandom(2)).
    pub fn new() -> Result<Cookie> {
        let mut bytes = [0u8; 16];
        crate::process::random_bytes(&mut bytes)
            .context("reading random bytes for the X cookie")?;
        Ok(Cookie(bytes))
    }

    /// One Xauthority entry (the format of xauth's files) granting this cookie for display
    /// `number` on any host (FamilyWild): the container's hostname is its own.
    pub fn xauthority(&self, number: u32) -> Vec<u8> {
        const FAMILY_WILD: u16 = 0xffff;
        let number = number.to_string();
        let mut entry = Vec::with_capacity(64);
        entry.extend_from_slice(&FAMILY_WILD.to_be_bytes());
        for field in [
            b"".as_slice(),
            number.as_bytes(),
            b"MIT-MAGIC-COOKIE-1",
            &self.0,
        ] {
            entry.extend_from_slice(&(field.len() as u16).to_be_bytes());
            entry.extend_from_slice(field);
        }
        entry
    }
}

/// The display number of a local `DISPLAY` (`:N`, `:N.S`, `unix:N`), whose socket is
/// /tmp/.X11-unix/XN; None for a display reached over TCP.
pub fn local_display_number(display: &str) -> Option<u32> {
    let rest = display
        .strip_prefix(':')
        .or_else(|| display.strip_prefix("unix:"))?;
    let number = rest.split('.').next()?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// The last line of a server's log that tells why it failed: the line after X's "Fatal server
/// error:", else the last line with words in it, without X's "(EE) " prefix.
pub fn server_message(log: &str) -> Option<String> {
    let clean = |line: &str| {
        line.trim()
            .trim_start_matches("(EE)")
            .trim()
            .trim_end_matches('.')
            .to_string()
    };
    // Our own setup of the server's namespaces reports as the tool does.
    let own = format!("{}: ", crate::errors::tool());
    let lines: Vec<&str> = log
        .lines()
        .map(|l| l.strip_prefix(own.as_str()).unwrap_or(l))
        .collect();
    if let Some(at) = lines.iter().position(|l| l.contains("Fatal server error")) {
        if let Some(line) = lines[at + 1..]
            .iter()
            .map(|l| clean(l))
            .find(|l| !l.is_empty())
        {
            return Some(line);
        }
    }
    lines.iter().rev().map(|l| clean(l)).find(|l| !l.is_empty())
}

/// A running display server, a child of the supervisor (the init of the server's PID
/// namespace). Dropping it ends the server and everything it started, and removes what is
/// left of its private directory.
pub struct Display {
    server: Pid,
    /// The private directory on the host (mode 0700), holding the socket directory.
    dir: PathBuf,
    /// The server's socket file, in `dir`.
    socket: PathBuf,
    cookie: Cookie,
}

impl Display {
    /// Starts the server for `gui`, its window titled `title`, and returns once it accepts
    /// clients. On failure nothing is left running and the error is one line: the server's
    /// own message, or that it did not get ready within [`GuiMode::ready_timeout`].
    ///
    /// `owner` are the host uid and gid of container root: the server runs as them (the
    /// caller, unless the caller is root) and the private directory is theirs, so that the
    /// container's init can take the socket and remove the directory. `created` learns of the
    /// directory's path just before it is made (for the watchdog to remove it should contain be
    /// killed before init has).
    pub fn start(
        gui: &Gui,
        title: &str,
        owner: (u32, u32),
        created: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<Display> {
        let euid = nix::unistd::geteuid();
        if owner.0 != euid.as_raw() && !euid.is_root() {
            bail!(
                "--gui needs container root to be you (uid {euid}), not host uid {}",
                owner.0
            );
        }
        let program = program_path(gui.mode)?;
        let dir = private_dir_path(owner.0 == euid.as_raw())?;
        // Named to the watchdog before it exists: a kill between the two would leave it.
        created(&dir)?;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let started = Self::start_in(&dir, gui, title, &program, owner);
        if started.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        started
    }

    fn start_in(
        dir: &Path,
        gui: &Gui,
        title: &str,
        program: &Path,
        owner: (u32, u32),
    ) -> Result<Display> {
        let host_display = std::env::var("DISPLAY").unwrap_or_default();
        let host_number = local_display_number(&host_display);
        // The server's own number differs from the host display's, whose socket it sees
        // under its own name in the same directory. (Inside, it is :0 whatever it is here.)
        // xpra on :0 attaches but forwards no window: 10 and up work for both.
        let number = if host_number == Some(10) { 11 } else { 10 };
        let cookie = Cookie::new()?;
        let sockets = dir.join("X11-unix");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&sockets)
            .with_context(|| format!("creating {}", sockets.display()))?;
        if owner
            != (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        {
            // The inner directory first, while the outer one is still ours alone: once that is
            // container root's, a process of its uid could put a link in the inner one's place.
            // Links are never followed (lchown).
            for path in [sockets.as_path(), dir] {
                std::os::unix::fs::lchown(path, Some(owner.0), Some(owner.1))
                    .with_context(|| format!("handing {} to container root", path.display()))?;
            }
        }
        // The server's stderr, for its message if it fails: a file without a name, which
        // nothing can find and which goes with the last descriptor.
        let log = fs::OpenOptions::new()
            .write(true)
            .read(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
            .with_context(|| format!("creating a log file in {}", dir.display()))?;

        let host_socket = host_number
            .map(|n| (n, PathBuf::from(format!("/tmp/.X11-unix/X{n}"))))
            .filter(|(_, path)| path.exists());
        // Read here: the server may run as another uid than the caller (root's container
        // root), and its /tmp is its own.
        let host_cookie = std::env::var_os("XAUTHORITY")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".Xauthority")))
            .and_then(|p| fs::read(p).ok());
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .context("opening /dev/null")?;
        // Xephyr says it is ready with -displayfd on its stdout, a pipe; xpra by a command it
        // runs once its first client is attached, through a FIFO in the socket directory
        // (held open for writing here too, so that it never reads as ended).
        let (ready_read, ready_write, _ready_held) = match gui.mode {
            GuiMode::Xephyr => {
                let (read, write) =
                    nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
                (read, Some(write), None)
            }
            GuiMode::Xpra => {
                let fifo = sockets.join(XPRA_READY);
                nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
                    .with_context(|| format!("creating {}", fifo.display()))?;
                if owner.0 != nix::unistd::geteuid().as_raw() {
                    // Not through a link container root's processes may have put there.
                    std::os::unix::fs::lchown(&fifo, Some(owner.0), Some(owner.1))
                        .with_context(|| format!("handing {} to container root", fifo.display()))?;
                }
                let open = |flags| {
                    nix::fcntl::open(
                        &fifo,
                        flags | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .with_context(|| format!("opening {}", fifo.display()))
                };
                let read = open(OFlag::O_RDONLY)?;
                let held = open(OFlag::O_WRONLY)?;
                (read, None, Some(held))
            }
        };

        let mut env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "XAUTHORITY" | "XDG_CONFIG_DIRS" | "XDG_RUNTIME_DIR"
                )
            })
            .collect();
        let args = match gui.mode {
            GuiMode::Xephyr => {
                if host_cookie.is_some() {
                    env.push(("XAUTHORITY".into(), HOST_COOKIE.into()));
                }
                xephyr_args(gui, title, program, number)
            }
            GuiMode::Xpra => {
                env.push(("XAUTHORITY".into(), SERVER_COOKIE.into()));
                env.push(("XDG_CONFIG_DIRS".into(), XPRA_CONFIG_DIRS.into()));
                env.push(("XDG_RUNTIME_DIR".into(), XPRA_SOCKETS.into()));
                let host = std::env::var("DISPLAY").unwrap_or_default();
                xpra_args(gui, title, program, number, &host, host_cookie.is_some())
            }
        };
        let exec = Exec::new(&args, env)?;

        let maps = IdMaps {
            uid: IdMap::single(0, owner.0),
            gid: IdMap::single(0, owner.1),
        };
        let setup = ServerSetup {
            sockets: &sockets,
            cookie: cookie.xauthority(number),
            host_socket: host_socket.as_ref().map(|(n, path)| (*n, path.as_path())),
            host_cookie: host_cookie.as_deref(),
            null: &null,
            ready: ready_write.as_ref(),
            log: &log,
            xpra: gui.mode == GuiMode::Xpra,
        };
        let child = NsChild::spawn(&[Namespace::Mount, Namespace::Pid], &maps, |_| {
            setup.enter()?;
            Err(exec.exec())
        })?;
        let server = child.release()?;
        drop(ready_write);
        let display = Display {
            server,
            dir: dir.to_path_buf(),
            socket: sockets.join(format!("X{number}")),
            cookie,
        };
        let limit = gui.mode.ready_timeout();
        match wait_ready(&ready_read, display.server, limit) {
            Ok(()) => Ok(display),
            Err(why) => {
                process::kill_and_reap(display.server);
                let mut text = String::new();
                let _ = nix::unistd::lseek(&log, 0, nix::unistd::Whence::SeekSet);
                let _ = (&log).read_to_string(&mut text);
                let said = server_message(&text);
                let name = gui.mode.program();
                Err(match (why, said) {
                    (NotReady::TimedOut, Some(line)) => anyhow!(
                        "{name} did not get ready within {} s (it said: {line})",
                        limit.as_secs()
                    ),
                    (NotReady::TimedOut, None) => {
                        anyhow!("{name} did not get ready within {} s", limit.as_secs())
                    }
                    (NotReady::Ended, Some(line)) => anyhow!("{name} failed: {line}"),
                    (NotReady::Ended, None) => anyhow!("{name} failed with no message"),
                    (NotReady::Io(e), _) => e,
                })
            }
        }
    }

    /// The server's PID (the init of its PID namespace).
    pub fn pid(&self) -> Pid {
        self.server
    }

    /// What the container's init needs to take the display over.
    /// `owner`: who runs the command inside (`--user`), to own the cookie file; `blocked`:
    /// addresses to close in the container's network namespace.
    pub fn handoff(&self, owner: Option<(u32, u32)>, blocked: Vec<IpAddr>) -> Handoff {
        Handoff {
            socket: self.socket.clone(),
            dir: self.dir.clone(),
            cookie: self.cookie.clone(),
            owner,
            blocked,
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        process::kill_and_reap(self.server);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Xephyr's command line: only its socket file, a cookie, no MIT-SHM, no reset when the last
/// client leaves, readiness on stdout.
fn xephyr_args(gui: &Gui, title: &str, program: &Path, number: u32) -> Vec<String> {
    let mut args: Vec<String> = vec![
        program.to_string_lossy().into_owned(),
        format!(":{number}"),
        "-displayfd".into(),
        "1".into(),
        "-nolisten".into(),
        "tcp".into(),
        "-nolisten".into(),
        "local".into(),
        "-extension".into(),
        "MIT-SHM".into(),
        "-noreset".into(),
        "-auth".into(),
        SERVER_COOKIE.into(),
        "-title".into(),
        title.into(),
    ];
    match gui.size {
        GuiSize::Window { width, height } => {
            args.extend(["-screen".into(), format!("{width}x{height}")]);
        }
        GuiSize::Full => args.push("-fullscreen".into()),
    }
    args
}

/// xpra's command line: a server in the foreground whose Xvfb has the options Xephyr gets
/// (only its socket file, our cookie, no MIT-SHM, no reset), with everything a container does
/// not need turned off (clipboard, sound, file transfer, printing, notifications, mDNS, dbus,
/// the web server, commands started by clients), a socket of its own; once ready it attaches
/// a client on the caller's display (`host`), whose windows are titled after the container,
/// and once that client is there it writes to the ready FIFO.
fn xpra_args(
    gui: &Gui,
    title: &str,
    program: &Path,
    number: u32,
    host: &str,
    host_cookie: bool,
) -> Vec<String> {
    let (width, height) = match gui.size {
        GuiSize::Window { width, height } => (width, height),
        // xpra's own default: the screen is resized to the client's (RandR) where it can be.
        GuiSize::Full => (5760, 2560),
    };
    let socket = format!("{XPRA_SOCKETS}/server");
    let off = [
        "--clipboard=no",
        "--notifications=no",
        "--speaker=off",
        "--microphone=off",
        "--webcam=no",
        "--file-transfer=no",
        "--printing=no",
        "--open-files=no",
        "--open-url=no",
        "--system-tray=no",
        "--mdns=no",
        "--dbus-proxy=no",
    ];
    let program = program.to_string_lossy().into_owned();
    // xpra splits a start command into words as Python's shlex does, and runs them with no
    // shell: each word in single quotes comes out whole, whatever DIR's name holds.
    let mut attach = vec!["env".to_string()];
    if host_cookie {
        attach.push(format!("XAUTHORITY={HOST_COOKIE}"));
    }
    attach.extend([
        format!("DISPLAY={host}"),
        program.clone(),
        "attach".into(),
        format!("socket:{socket}"),
    ]);
    attach.extend(off.iter().map(|s| s.to_string()));
    attach.extend(["--opengl=no".into(), format!("--title=@title@ ({title})")]);
    let attach = shlex_join(&attach);
    let ready = shlex_join(&[
        "sh".into(),
        "-c".into(),
        format!("echo ready >/tmp/.X11-unix/{XPRA_READY}"),
    ]);
    let mut args: Vec<String> = [
        program.as_str(),
        "start",
        &format!(":{number}"),
        "--daemon=no",
        &format!(
            "--xvfb=Xvfb +extension Composite -screen 0 {width}x{height}x24+32 -dpi 96 \
             -nolisten tcp -nolisten local -extension MIT-SHM -noreset -auth {SERVER_COOKIE}"
        ),
        &format!("--socket-dir={XPRA_SOCKETS}"),
        &format!("--socket-dirs={XPRA_SOCKETS}"),
        &format!("--bind={socket}"),
        &format!("--log-dir={XPRA_SOCKETS}"),
        "--html=off",
        "--ssl=off",
        "--pulseaudio=no",
        "--dbus-control=no",
        "--dbus-launch=",
        "--systemd-run=no",
        "--start-new-commands=no",
        "--exit-with-children=no",
        "--opengl=no",
        &format!("--start={attach}"),
        &format!("--start-after-connect={ready}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(off.iter().map(|s| s.to_string()));
    args
}

/// `words` as one line that Python's `shlex.split` (POSIX mode) turns back into exactly these
/// words: each in single quotes, inside which nothing is special but the closing quote; a
/// quote in a word is closed, given in double quotes and reopened.
fn shlex_join(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("'{}'", word.replace('\'', "'\"'\"'")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the server's namespace is built from, opened by the supervisor.
struct ServerSetup<'a> {
    /// The socket directory on the host, in the private directory.
    sockets: &'a Path,
    /// The server's Xauthority entry.
    cookie: Vec<u8>,
    host_socket: Option<(u32, &'a Path)>,
    /// The contents of the caller's cookie file for the host display.
    host_cookie: Option<&'a [u8]>,
    null: &'a OwnedFd,
    /// Becomes the server's stdout: Xephyr's -displayfd. None for xpra, whose stdout is
    /// the log.
    ready: Option<&'a OwnedFd>,
    log: &'a fs::File,
    /// An xpra server: its configuration and runtime directories on its /tmp.
    xpra: bool,
}

impl ServerSetup<'_> {
    /// Runs in the server's namespaces as root there: a fresh /tmp with the server's cookie
    /// file, the private socket directory at /tmp/.X11-unix, the host display's socket and
    /// cookie file where the server finds them; stdin /dev/null, stdout the readiness pipe,
    /// stderr the log, and a session of its own (the terminal's ^C is the container's).
    fn enter(&self) -> Result<()> {
        // Errors from here on are the server's: they go to its log.
        // SAFETY: dup2 onto 2 of this child, which owns its descriptor table.
        Errno::result(unsafe { libc::dup2(self.log.as_raw_fd(), 2) })
            .context("redirecting the server's stderr")?;
        mount::make_private()?;
        // Opened in this mount namespace (a descriptor opened before it was made would name
        // the host's mounts, which cannot be bound here) and before /tmp is replaced.
        let open_path = |path: &Path| {
            nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .with_context(|| format!("opening {}", path.display()))
        };
        let sockets_fd = open_path(self.sockets)?;
        let host_socket = match self.host_socket {
            Some((n, path)) => Some((n, open_path(path)?)),
            None => None,
        };
        mount::tmpfs(
            Path::new("/tmp"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            &format!("mode=1777,size={SERVER_TMP_SIZE}"),
        )?;
        write_private(Path::new(SERVER_COOKIE), &self.cookie)?;
        if self.xpra {
            let conf = Path::new(XPRA_CONFIG_DIRS).join("xpra");
            for dir in [conf.as_path(), Path::new(XPRA_SOCKETS)] {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .recursive(true)
                    .create(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            write_private(&conf.join("xpra.conf"), XPRA_CONF.as_bytes())?;
        }
        let sockets = Path::new("/tmp/.X11-unix");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(sockets)
            .with_context(|| format!("creating {}", sockets.display()))?;
        mount::bind(&mount::fd_path(&sockets_fd), sockets)?;
        if let Some((n, fd)) = host_socket {
            let target = sockets.join(format!("X{n}"));
            fs::File::create(&target).with_context(|| format!("creating {}", target.display()))?;
            mount::bind(&mount::fd_path(&fd), &target)?;
        }
        if let Some(cookie) = self.host_cookie {
            write_private(Path::new(HOST_COOKIE), cookie)?;
        }
        let stdout = self.ready.map_or(self.log.as_raw_fd(), |fd| fd.as_raw_fd());
        for (fd, to) in [(self.null.as_raw_fd(), 0), (stdout, 1)] {
            // SAFETY: dup2 onto 0 and 1 of this child, which owns its descriptor table.
            Errno::result(unsafe { libc::dup2(fd, to) }).context("redirecting the server")?;
        }
        nix::unistd::setsid().context("starting a session for the server")?;
        // The caller's working directory may be hidden under the new /tmp.
        nix::unistd::chdir("/").context("entering /")?;
        Ok(())
    }
}

enum NotReady {
    /// The server closed the pipe without a display number: it ended.
    Ended,
    TimedOut,
    Io(anyhow::Error),
}

/// Waits for the line the server writes when it accepts clients (on `ready`), or for the
/// server to end (its pidfd becomes readable), at most `limit`.
fn wait_ready(ready: &OwnedFd, server: Pid, limit: Duration) -> Result<(), NotReady> {
    let io = |e: Errno| NotReady::Io(anyhow!("waiting for the display: {}", e.desc()));
    let pidfd = process::pidfd_open(server.as_raw()).map_err(io)?;
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NotReady::TimedOut);
        }
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let mut fds = [
            PollFd::new(ready.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(io(e)),
        }
        let readable = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (line_waiting, ended) = (readable(&fds[0]), readable(&fds[1]));
        if line_waiting {
            let mut buf = [0u8; 64];
            match nix::unistd::read(ready, &mut buf) {
                Ok(0) => return Err(NotReady::Ended),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.contains(&b'\n') {
                        return Ok(());
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(io(e)),
            }
        } else if ended {
            return Err(NotReady::Ended);
        }
    }
}

/// The path of a fresh directory for one display (a name with a random part), in
/// $XDG_RUNTIME_DIR when the caller has one and container root is the caller (root's container
/// root could not enter root's), else in /tmp.
fn private_dir_path(runtime_dir: bool) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|_| runtime_dir)
        .map(PathBuf::from)
        .filter(|d| {
            d.is_absolute() && nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok()
        })
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let cookie = Cookie::new()?;
    let suffix: String = cookie.0[..6].iter().map(|b| format!("{b:02x}")).collect();
    Ok(base.join(format!("contain-gui.{}.{suffix}", std::process::id())))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .with_context(|| format!("writing {}", path.display()))
}

/// What the container's init needs to take a display over: the server's socket and the
/// private directory on the host, the cookie, and who may read the cookie file inside.
pub struct Handoff {
    socket: PathBuf,
    dir: PathBuf,
    cookie: Cookie,
    /// uid and gid inside of the user the command runs as (`--user`); root's otherwise.
    owner: Option<(u32, u32)>,
    /// Destinations closed in the container's network namespace (see [`net::host_addresses`]).
    blocked: Vec<IpAddr>,
}

impl Handoff {
    /// In the container's setup, first thing, before its root is built: the directory holding
    /// the private one, opened while its path still leads there (the host sandbox,
    /// `--tmp-overlay /`, covers the host's /tmp with a tmpfs of its own).
    pub fn open(&self) -> Result<OpenHandoff<'_>> {
        let parent = self.dir.parent().unwrap_or(Path::new("/"));
        Ok(OpenHandoff {
            handoff: self,
            parent: mount::open_dir(parent)?,
        })
    }

    /// In the container's init: the routes to the host's own addresses (through pasta)
    /// closed, in the container's network namespace, as root of the user namespace owning it.
    pub fn close_host_addresses(&self) -> Result<()> {
        net::prohibit_destinations(&self.blocked)
    }
}

/// A [`Handoff`] with the private directory's parent open, in the setup's mount namespace (a
/// bind from a mount of another namespace is refused).
pub struct OpenHandoff<'a> {
    handoff: &'a Handoff,
    parent: OwnedFd,
}

impl OpenHandoff<'_> {
    /// In the container's setup (before the lock point, see container.rs): a small
    /// tmpfs on ROOT/tmp/.X11-unix, the server's socket bound there as X0, the cookie file
    /// (0600), and the private directory removed from the host. The binding keeps the socket
    /// reachable after its file is gone.
    pub fn install(&self, rootfs: &Rootfs) -> Result<()> {
        let this = self.handoff;
        // Resolved inside the root: a link in the tree (tmp -> /home/...) cannot lead the
        // socket or the cookie out of it.
        let (sockets, _) = SOCKET_INSIDE.rsplit_once('/').expect("an absolute path");
        rootfs.mount_onto(
            sockets,
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=1777,size=64k"),
        )?;
        rootfs.bind_onto(&self.reached(&this.socket), SOCKET_INSIDE)?;
        let (_, name) = XAUTHORITY_INSIDE
            .rsplit_once('/')
            .expect("an absolute path");
        let dir = rootfs.resolve(sockets)?;
        let cookie = nix::fcntl::openat(
            &dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map(fs::File::from)
        .with_context(|| format!("creating {XAUTHORITY_INSIDE}"))?;
        (&cookie)
            .write_all(&this.cookie.xauthority(0))
            .with_context(|| format!("writing {XAUTHORITY_INSIDE}"))?;
        if let Some((uid, gid)) = this.owner {
            nix::unistd::fchown(&cookie, Some(uid.into()), Some(gid.into()))
                .with_context(|| format!("handing {XAUTHORITY_INSIDE} to uid {uid}"))?;
        }
        fs::remove_dir_all(self.reached(&this.dir))
            .with_context(|| format!("removing {}", this.dir.display()))?;
        Ok(())
    }

    /// `path`, below the private directory's parent, reached through the descriptor opened
    /// before the container's mounts could cover it.
    fn reached(&self, path: &Path) -> PathBuf {
        let parent = self.handoff.dir.parent().unwrap_or(Path::new("/"));
        let below = path.strip_prefix(parent).unwrap_or(path);
        mount::fd_path(&self.parent).join(below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!("full".parse::<GuiSize>().unwrap(), GuiSize::Full);
        assert_eq!(
            "800x600".parse::<GuiSize>().unwrap(),
            GuiSize::Window {
                width: 800,
                height: 600
            }
        );
        for bad in [
            "",
            "800",
            "800x",
            "x600",
            "0x600",
            "800x-1",
            "800x600x2",
            "+8x6",
            "99999x1",
        ] {
            assert!(bad.parse::<GuiSize>().is_err(), "{bad:?} was accepted");
        }
        assert_eq!(GuiSize::default().to_string(), "1024x768");
    }

    #[test]
    fn local_displays_have_numbers() {
        assert_eq!(local_display_number(":0"), Some(0));
        assert_eq!(local_display_number(":12.1"), Some(12));
        assert_eq!(local_display_number("unix:3"), Some(3));
        assert_eq!(local_display_number("host:0"), None);
        assert_eq!(local_display_number("localhost:10.0"), None);
        assert_eq!(local_display_number(":x"), None);
        assert_eq!(local_display_number(""), None);
    }

    #[test]
    fn the_cookie_entry_is_xauths_format() {
        let cookie = Cookie([7; 16]);
        let entry = cookie.xauthority(0);
        let mut expected = vec![0xff, 0xff, 0, 0, 0, 1, b'0', 0, 18];
        expected.extend_from_slice(b"MIT-MAGIC-COOKIE-1");
        expected.extend_from_slice(&[0, 16]);
        expected.extend_from_slice(&[7; 16]);
        assert_eq!(entry, expected);
    }

    #[test]
    fn cookies_are_fresh() {
        assert_ne!(Cookie::new().unwrap().0, Cookie::new().unwrap().0);
    }

    #[test]
    fn start_command_words_are_quoted_whole() {
        let words = ["env".to_string(), "--title=a 'b' $(c) `d`\n;e".to_string()];
        assert_eq!(
            shlex_join(&words),
            "'env' '--title=a '\"'\"'b'\"'\"' $(c) `d`\n;e'"
        );
    }

    #[test]
    fn the_server_says_why_it_failed() {
        let log =
            "\nFatal server error:\n(EE) Xephyr cannot open host display. Is DISPLAY set?\n(EE) \n";
        assert_eq!(
            server_message(log).as_deref(),
            Some("Xephyr cannot open host display. Is DISPLAY set?")
        );
        assert_eq!(
            server_message("a\nlast words.\n\n").as_deref(),
            Some("last words")
        );
        assert_eq!(server_message(""), None);
    }
}
