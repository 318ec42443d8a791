//! The container's network: the `--net` modes, published ports (`-p`), the loopback interface
//! of a new network namespace, and pasta, the user-mode network stack that connects a new
//! network namespace to the host's.
//!
//! The three modes:
//! - [`NetMode::Private`]: a new network namespace with only `lo`, which init brings up with
//!   [`bring_up_loopback`].
//! - [`NetMode::Host`]: no network namespace of its own (as `-n`).
//! - [`NetMode::Pasta`]: a new network namespace that [`Pasta::start`] connects to the host:
//!   an interface with the host's address and routes, and a default route. The gateway
//!   address leads to the outside only: services that listen on the host's loopback alone
//!   often trust every local caller, and stay out of reach unless the caller allows them
//!   ([`PastaSetup::host_loopback`]). Published ports ([`Publish`]) are forwarded from the
//!   host into the container by the same pasta.
//!
//! pasta runs as the caller; run by root, as container root's host user and group instead,
//! inside the container's user namespace (see [`PastaUser`]): never as root.
//!
//! The order in the supervisor: validate with [`check_options`] before creating anything;
//! create the namespaces and write the ID maps (`NsChild::spawn`); [`Pasta::start`] on the
//! held child's PID; release the child; [`Pasta::stop`] (or drop) once init has ended.
//!
//! It must not change the host's network: everything it configures is inside the container's
//! network namespace, and pasta runs as the caller.

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The program run for `--net pasta`, looked up in PATH.
pub const PASTA: &str = "pasta";

/// How long pasta may take to configure the namespace. It takes milliseconds; this only
/// bounds a pasta that hangs.
pub const PASTA_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What pasta's `--pid` file is, so that it writes its PID into the pipe on its stdout. It
/// writes that file once the namespace is configured, which makes the line the signal that
/// pasta is ready. A path into pasta's own /proc/self always opens: other processes' fd links
/// are refused to it once it has joined the container's user namespace, and files it
/// inherited beyond stderr are closed by newer pasta versions at start.
const READY_PIPE: &str = "/proc/self/fd/1";

/// How the container is connected to a network (`--net MODE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NetMode {
    /// A new network namespace with only the loopback interface, up.
    #[default]
    Private,
    /// The host's network namespace, shared (as `-n`).
    Host,
    /// A new network namespace connected to the host's network through pasta.
    Pasta,
}

impl NetMode {
    /// Every mode, as typed on the command line.
    pub const NAMES: [&'static str; 3] = ["private", "host", "pasta"];

    /// The mode as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NetMode::Private => "private",
            NetMode::Host => "host",
            NetMode::Pasta => "pasta",
        }
    }

    /// Whether the container gets a network namespace of its own (CLONE_NEWNET).
    pub fn new_namespace(self) -> bool {
        self != NetMode::Host
    }
}

impl fmt::Display for NetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NetMode {
    type Err = anyhow::Error;

    fn from_str(word: &str) -> Result<NetMode> {
        match word {
            "private" => Ok(NetMode::Private),
            "host" => Ok(NetMode::Host),
            "pasta" => Ok(NetMode::Pasta),
            _ => bail!("unknown network mode '{word}' (expected private, host or pasta)"),
        }
    }
}

/// A transport protocol a port is published for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The name after the slash in `-p 53/udp`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// pasta's option forwarding this protocol from the host into the namespace.
    fn pasta_option(self) -> &'static str {
        match self {
            Proto::Tcp => "-t",
            Proto::Udp => "-u",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A host port forwarded into the container: `-p HOSTPORT[:CONTAINERPORT][/tcp|/udp]`.
/// The container port defaults to the host port, the protocol to TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The port pasta listens on, on every host address.
    pub host: u16,
    /// The port connections are forwarded to, inside the container.
    pub container: u16,
    pub proto: Proto,
}

impl Publish {
    /// pasta's port specification: `HOST:CONTAINER`, or `HOST` when both are the same.
    fn pasta_spec(&self) -> String {
        if self.host == self.container {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.container)
        }
    }
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.container, self.proto)
    }
}

impl FromStr for Publish {
    type Err = anyhow::Error;

    /// Parses `HOSTPORT[:CONTAINERPORT][/tcp|/udp]`; every error names the offending word.
    fn from_str(text: &str) -> Result<Publish> {
        let (ports, proto) = match text.split_once('/') {
            None => (text, Proto::Tcp),
            Some((ports, "tcp")) => (ports, Proto::Tcp),
            Some((ports, "udp")) => (ports, Proto::Udp),
            Some((_, other)) => {
                bail!("unknown protocol '{other}' in '{text}' (expected tcp or udp)")
            }
        };
        let (host, container) = match ports.split_once(':') {
            None => (ports, ports),
            Some((_, container)) if container.contains(':') => {
                bail!("'{text}' has more than two ports (expected HOSTPORT[:CONTAINERPORT])")
            }
            Some(pair) => pair,
        };
        Ok(Publish {
            host: parse_port(host, text)?,
            container: parse_port(container, text)?,
            proto,
        })
    }
}

/// A port number 1-65535 written in decimal digits only.
fn parse_port(word: &str, text: &str) -> Result<u16> {
    if word.is_empty() {
        bail!("missing port number in '{text}'");
    }
    if !word.bytes().all(|b| b.is_ascii_digit()) {
        bail!("port '{word}' in '{text}' is not a number");
    }
    match word.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => bail!("port '{word}' in '{text}' is out of range 1-65535"),
    }
}

/// Checks that the network options fit together, before anything is created: ports can only
/// be published and the host's loopback allowed through pasta, and each host port (per
/// protocol) only once.
pub fn check_options(mode: NetMode, publish: &[Publish], host_loopback: bool) -> Result<()> {
    if host_loopback && mode != NetMode::Pasta {
        bail!("--allow-host-loopback needs --net pasta");
    }
    if let Some(first) = publish.first() {
        if mode != NetMode::Pasta {
            bail!(
                "publishing port {}/{} needs --net pasta (the network mode is {mode})",
                first.host,
                first.proto
            );
        }
    }
    for (i, p) in publish.iter().enumerate() {
        if publish[..i]
            .iter()
            .any(|q| q.host == p.host && q.proto == p.proto)
        {
            bail!("host port {}/{} is published twice", p.host, p.proto);
        }
        p.check_free()?;
    }
    Ok(())
}

impl Publish {
    /// Fails if another program holds the host port. pasta binds published ports on every
    /// host address; the pasta of Debian 12 carries on silently when it cannot, and the
    /// port would then reach that other program, not the container.
    fn check_free(&self) -> Result<()> {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
        // Addresses, not strings: a string would link glibc's resolver (NSS) into the static
        // build, even though these literals never reach it.
        for any in [
            Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::from(Ipv6Addr::UNSPECIFIED),
        ] {
            let bound = match self.proto {
                Proto::Tcp => TcpListener::bind((any, self.host)).map(drop),
                Proto::Udp => UdpSocket::bind((any, self.host)).map(drop),
            };
            match bound {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    bail!(
                        "host port {}/{} is in use by another program",
                        self.host,
                        self.proto
                    )
                }
                // A host without IPv6 (or IPv4) has nothing there to conflict with.
                Err(_) if any.is_ipv6() => {}
                Err(e) => bail!("host port {}/{}: {e}", self.host, self.proto),
            }
        }
        Ok(())
    }
}

/// Brings the loopback interface `lo` of the caller's network namespace up, as `ip link set
/// lo up` would, so that 127.0.0.1 and ::1 work. The caller must be root in the user
/// namespace that owns the network namespace (CAP_NET_ADMIN there): call it in the container's
/// init after it became root, for [`NetMode::Private`]. pasta does the same itself for
/// [`NetMode::Pasta`]; a second call changes nothing.
pub fn bring_up_loopback() -> Result<()> {
    // SAFETY: socket() takes no pointers; a non-negative return is a new descriptor that
    // nothing else owns, so OwnedFd may close it.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Errno::last()).context("bringing up lo: creating a socket");
    }
    // SAFETY: see above: the descriptor was just created and is owned here alone.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);

    // SAFETY: ifreq is plain old data (a name and a union of integers, sockaddrs and a
    // pointer); all zeroes is a valid value, with the name NUL-terminated and no pointer used.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes ifru_flags of the ifreq
    // we own, which outlives the call.
    if unsafe {
        libc::ioctl(
            raw,
            libc::SIOCGIFFLAGS as _,
            &mut request as *mut libc::ifreq,
        )
    } < 0
    {
        return Err(Errno::last()).context("bringing up lo: reading its flags");
    }
    // SAFETY: SIOCGIFFLAGS filled ifru_flags, so that union member is the initialised one.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS only reads the ifreq we own, which outlives the call.
    if unsafe { libc::ioctl(raw, libc::SIOCSIFFLAGS as _, &request as *const libc::ifreq) } < 0 {
        let errno = Errno::last();
        if errno == Errno::EPERM {
            bail!("bringing up lo: {} (needs root in the user namespace that owns the network namespace)", errno.desc());
        }
        return Err(errno).context("bringing up lo");
    }
    Ok(())
}

/// How pasta connects a container.
#[derive(Clone, Copy, Debug)]
pub struct PastaSetup<'a> {
    /// Host ports forwarded into the container.
    pub publish: &'a [Publish],
    /// Whether the gateway address leads to the host's loopback (pasta's own default), where
    /// services listening on 127.0.0.1 or ::1 alone are reached as if from the host itself.
    pub host_loopback: bool,
    /// Container root's host uid and gid: who pasta runs as when root starts it.
    pub root_on_host: (u32, u32),
}

/// Who pasta runs as, and how it reaches the container's network namespace.
pub enum PastaUser {
    /// The caller, who owns the container's user namespace: pasta joins it and the network
    /// namespace of the target PID itself.
    Caller { uid: u32, gid: u32 },
    /// Container root: for a caller who is root, whose pasta must not be. The user namespace
    /// is entered before exec (pasta would drop to its `--runas` user first and then could
    /// not join a namespace root owns); pasta is root there and gets the network namespace as
    /// an inherited descriptor, as it may not open root's /proc/PID/ns/net itself.
    ContainerRoot { user_ns: OwnedFd, net_ns: OwnedFd },
}

impl PastaUser {
    /// The caller, unless the caller is root; then container root (`root_on_host`) with
    /// `target`'s namespaces, refused if that is host root too.
    pub fn for_container(target: Pid, root_on_host: (u32, u32)) -> Result<PastaUser> {
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        if !uid.is_root() {
            return Ok(PastaUser::Caller {
                uid: uid.as_raw(),
                gid: gid.as_raw(),
            });
        }
        if root_on_host.0 == 0 || root_on_host.1 == 0 {
            // Root of a user namespace of its own (in pseudo, in a container) is no host root.
            if crate::idmap::is_initial(&crate::idmap::own_namespace(crate::idmap::IdKind::User)) {
                bail!("--net pasta as root runs pasta as container root, which -u or -g maps to host root: map it elsewhere");
            }
            return Ok(PastaUser::Caller {
                uid: uid.as_raw(),
                gid: gid.as_raw(),
            });
        }
        let open = |kind: &str| {
            let path = format!("/proc/{target}/ns/{kind}");
            nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_context(|| format!("opening {path} for pasta"))
        };
        Ok(PastaUser::ContainerRoot {
            user_ns: open("user")?,
            net_ns: open("net")?,
        })
    }
}

/// The arguments of a pasta that configures the network namespace of `target` and forwards
/// `setup.publish` into it, running in the foreground as `user`.
///
/// Forwarding is exactly what was asked for: `-t`/`-u` get the published ports or `none`
/// (pasta's default for them, `auto`, would follow whatever the container listens on), and
/// `-T none -U none` keep the host's listening ports out of the container's loopback. The
/// gateway address leads to the host's loopback only with `setup.host_loopback`
/// (`--no-map-gw` otherwise, as podman passes it).
pub fn pasta_args(target: Pid, setup: &PastaSetup, user: &PastaUser) -> Vec<String> {
    let runas = match user {
        PastaUser::Caller { uid, gid } => format!("{uid}:{gid}"),
        // Root inside the namespace it is already in.
        PastaUser::ContainerRoot { .. } => "0:0".into(),
    };
    let mut args: Vec<String> = [
        "--foreground",
        "--quiet",
        "--config-net",
        // pasta started as root would switch to nobody: a credential change, which clears the
        // parent-death signal, and nobody may not join a user namespace root created.
        "--runas",
        &runas,
        "--pid",
        READY_PIPE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for proto in [Proto::Tcp, Proto::Udp] {
        let specs: Vec<String> = setup
            .publish
            .iter()
            .filter(|p| p.proto == proto)
            .map(Publish::pasta_spec)
            .collect();
        args.push(proto.pasta_option().into());
        args.push(if specs.is_empty() {
            "none".into()
        } else {
            specs.join(",")
        });
    }
    args.extend(["-T", "none", "-U", "none"].map(String::from));
    if !setup.host_loopback {
        args.push("--no-map-gw".into());
    }
    match user {
        PastaUser::Caller { .. } => args.push(target.to_string()),
        PastaUser::ContainerRoot { net_ns, .. } => args.extend([
            "--netns-only".into(),
            "--netns".into(),
            format!("/proc/self/fd/{}", net_ns.as_raw_fd()),
        ]),
    }
    args
}

/// A running pasta serving one container's network namespace. It is a child of the caller;
/// dropping this kills and reaps it, and the kernel kills it if the caller dies, even of
/// SIGKILL. The caller must be single-threaded (as the tools are): the parent-death signal
/// fires when the thread that started pasta ends.
pub struct Pasta {
    child: Child,
}

impl Pasta {
    /// Starts pasta on the user and network namespaces of `target` (the container's init,
    /// held before it runs, with its ID maps written) and returns once pasta has configured
    /// the network namespace: interface, addresses, routes, and the published ports bound on
    /// the host. On failure nothing is left running and the error is one line: pasta missing,
    /// /dev/net/tun refused, or pasta's own message.
    pub fn start(target: Pid, setup: &PastaSetup) -> Result<Pasta> {
        Pasta::start_program(PASTA, target, setup)
    }

    /// [`Pasta::start`] with another program than `pasta` (a path or a name in PATH).
    pub fn start_program(program: &str, target: Pid, setup: &PastaSetup) -> Result<Pasta> {
        let parent = nix::unistd::getpid();
        // Looked up here rather than by exec: a PATH directory the caller may not search
        // would turn "not installed" into "permission denied".
        let Some(path) = find_program(program) else {
            bail!("--net pasta needs {program}, which is not installed (Debian package passt provides it)");
        };
        let user = PastaUser::for_container(target, setup.root_on_host)?;
        if let PastaUser::ContainerRoot { .. } = user {
            check_unprivileged_ports(setup.publish)?;
        }
        let namespaces = match &user {
            PastaUser::Caller { .. } => None,
            PastaUser::ContainerRoot { user_ns, net_ns } => {
                Some((user_ns.as_raw_fd(), net_ns.as_raw_fd()))
            }
        };
        let (root_uid, root_gid) = setup.root_on_host;
        let mut command = Command::new(path);
        command
            .args(pasta_args(target, setup, &user))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: ^C and ^Z on the terminal are for the container, not
            // for its network.
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe calls (sigemptyset, sigprocmask, fchown, raw credential and setns
        // system calls, prctl, getppid, close_range, fcntl) on its own stack; it allocates
        // nothing, the error it may return is built from a raw errno.
        unsafe {
            command.pre_exec(move || {
                let fail = || Err(std::io::Error::last_os_error());
                // std passes the signal mask on, and the supervisor blocks SIGCHLD, SIGTERM
                // and others for its signalfd: pasta would never see them.
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                    return fail();
                }
                if let Some((user_ns, _)) = namespaces {
                    // pasta opens its stdout again by name (READY_PIPE), which needs the
                    // pipe's owner to be who it runs as. Root's groups go next, while they
                    // may; then container root, by raw system calls (glibc's wrappers would
                    // wait for threads a forked child of a threaded test runner does not
                    // have).
                    if libc::fchown(1, root_uid, root_gid) != 0 {
                        return fail();
                    }
                    // Refused (EPERM) only to a root of a user namespace that denies it.
                    if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                        && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
                    {
                        return fail();
                    }
                    if libc::setns(user_ns, libc::CLONE_NEWUSER) != 0
                        || libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                        || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0
                    {
                        return fail();
                    }
                }
                // After the last change of credentials, which would clear it.
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return fail();
                }
                // The parent may have died before the request: then nobody would end us.
                if libc::getppid() != parent.as_raw() {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                // Descriptors the caller opened without O_CLOEXEC (a lifeline pipe, a pty)
                // must not be held open by pasta. Failure only means an old kernel.
                crate::process::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
                // But the network namespace pasta is told to open as /proc/self/fd/N.
                if let Some((_, net_ns)) = namespaces {
                    if libc::fcntl(net_ns, libc::F_SETFD, 0) != 0 {
                        return fail();
                    }
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| spawn_error(program, e))?;
        drop(user);
        match wait_until_configured(&mut child) {
            Ok(()) => Ok(Pasta { child }),
            Err(startup) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let messages = read_rest(child.stderr.take(), startup.messages);
                Err(startup_error(startup.why, status, &messages))
            }
        }
    }

    /// pasta's PID.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Whether pasta has ended (and reaps it if so): pasta never ends on its own while it
    /// serves a namespace, so this means the container lost its network.
    pub fn has_ended(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Ends pasta and reaps it. Call it once the container's init has ended; pasta does not
    /// notice that by itself.
    pub fn stop(self) {
        drop(self)
    }
}

impl Drop for Pasta {
    fn drop(&mut self) {
        // Killing a child that has been reaped already fails harmlessly (std knows).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Refuses host ports that only a privileged process may bind, for a pasta that runs as
/// container root: it has no privilege on the host, and Debian 12's pasta carries on
/// silently when it cannot bind a port.
fn check_unprivileged_ports(publish: &[Publish]) -> Result<()> {
    let first = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(1024);
    match publish.iter().find(|p| u32::from(p.host) < first) {
        Some(p) => bail!(
            "publishing host port {}/{}: pasta run by root runs as container root, which may bind host ports from {first} up only (net.ipv4.ip_unprivileged_port_start)",
            p.host,
            p.proto
        ),
        None => Ok(()),
    }
}

/// Why a start failed, with what pasta said so far.
struct StartupFailure {
    why: Failure,
    messages: Vec<u8>,
}

enum Failure {
    /// pasta closed its stdout without writing its PID: it ended.
    Ended,
    TimedOut,
    Io(anyhow::Error),
}

/// Most of pasta's messages that fit; it prints a few hundred bytes before failing.
const MESSAGES_KEPT: usize = 64 * 1024;

/// Waits for pasta's PID line on its stdout (the sign that the namespace is configured),
/// collecting its stderr meanwhile. On success both pipes are closed: pasta ignores SIGPIPE,
/// so later messages are dropped instead of filling a pipe nobody reads.
fn wait_until_configured(child: &mut Child) -> Result<(), StartupFailure> {
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(StartupFailure {
            why: Failure::Io(anyhow!("pasta's output is not connected")),
            messages: Vec::new(),
        });
    };
    let mut messages = Vec::new();
    let mut err_open = true;
    let deadline = Instant::now() + PASTA_READY_TIMEOUT;
    let fail = |why, messages| Err(StartupFailure { why, messages });
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            child.stderr = Some(err);
            return fail(Failure::TimedOut, messages);
        }
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let (out_ready, err_ready) = {
            let mut fds = vec![PollFd::new(out.as_fd(), PollFlags::POLLIN)];
            if err_open {
                fds.push(PollFd::new(err.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return fail(
                        Failure::Io(anyhow!("waiting for pasta: {}", e.desc())),
                        messages,
                    )
                }
            }
            let ready = |fd: Option<&PollFd>| {
                fd.and_then(PollFd::revents).is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                })
            };
            (ready(fds.first()), ready(fds.get(1)))
        };
        if err_ready {
            let mut buf = [0u8; 4096];
            match err.read(&mut buf) {
                Ok(0) => err_open = false,
                Ok(n) => {
                    let room = MESSAGES_KEPT.saturating_sub(messages.len());
                    messages.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => err_open = false,
            }
        }
        if out_ready {
            let mut buf = [0u8; 64];
            match out.read(&mut buf) {
                Ok(n) if n > 0 => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => {
                    child.stderr = Some(err);
                    return fail(Failure::Ended, messages);
                }
            }
        }
    }
}

/// Appends what is left on pasta's stderr. Only called once pasta is reaped, so every writer
/// is gone and the read ends.
fn read_rest(err: Option<std::process::ChildStderr>, mut messages: Vec<u8>) -> Vec<u8> {
    if let Some(mut err) = err {
        let mut rest = Vec::new();
        let _ = err.read_to_end(&mut rest);
        let room = MESSAGES_KEPT.saturating_sub(messages.len());
        messages.extend_from_slice(&rest[..rest.len().min(room)]);
    }
    messages
}

fn spawn_error(program: &str, e: std::io::Error) -> anyhow::Error {
    anyhow!("starting {program}: {e}")
}

/// The executable file `program` names: itself if it holds a slash, else the first in PATH
/// (the tools' default PATH if there is none).
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let executable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| crate::process::DEFAULT_PATH.into());
    std::env::split_paths(&search)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|path| executable(path))
}

/// The one-line error for a pasta that did not get ready.
fn startup_error(
    why: Failure,
    status: Option<std::process::ExitStatus>,
    messages: &[u8],
) -> anyhow::Error {
    let said = last_message(messages);
    match why {
        Failure::Io(e) => e,
        Failure::TimedOut => match said {
            Some(line) => anyhow!(
                "pasta did not configure the network within {} s (it said: {line})",
                PASTA_READY_TIMEOUT.as_secs()
            ),
            None => anyhow!(
                "pasta did not configure the network within {} s",
                PASTA_READY_TIMEOUT.as_secs()
            ),
        },
        Failure::Ended => {
            if let Some(line) = &said {
                if line.to_ascii_lowercase().contains("tun") {
                    if let Some(problem) = tun_problem() {
                        return anyhow!("pasta failed: {problem} (pasta: {line})");
                    }
                }
                return anyhow!("pasta failed: {line}");
            }
            match status {
                Some(s) if s.signal().is_some() => {
                    anyhow!("pasta failed: killed by signal {}", s.signal().unwrap_or(0))
                }
                Some(s) => anyhow!(
                    "pasta failed with status {} and no message",
                    s.code().unwrap_or(-1)
                ),
                None => anyhow!("pasta failed with no message"),
            }
        }
    }
}

/// pasta's error: the last line it printed that is not noise. It prints its configuration
/// summary (interfaces, addresses, DNS) before it fails, and the reason last, as it dies.
pub fn last_message(messages: &[u8]) -> Option<String> {
    String::from_utf8_lossy(messages)
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !is_noise(line))
        .map(|line| line.strip_prefix("pasta: ").unwrap_or(line).to_string())
}

/// Lines that say nothing about why pasta failed: complaints about a missing system logger.
fn is_noise(line: &str) -> bool {
    line.starts_with("Failed to send ") && line.ends_with(" to syslog")
}

/// Why the caller cannot use /dev/net/tun, if it cannot: pasta opens it in the container's
/// user namespace, with the caller's credentials, so a device only root may open stops it.
fn tun_problem() -> Option<String> {
    const TUN: &str = "/dev/net/tun";
    let meta = match std::fs::metadata(TUN) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!(
                "{TUN} does not exist: the tun kernel module provides it"
            ))
        }
        Err(e) => return Some(format!("{TUN} is not usable by you: {e}")),
    };
    let opened = std::fs::OpenOptions::new().read(true).write(true).open(TUN);
    let others_rw = meta.permissions().mode() & 0o006 == 0o006;
    match opened {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            Some(format!("{TUN} is not usable by you: on a normal system udev makes it mode 0666"))
        }
        // Root opens it anyway, but not from a user namespace that does not map its owner.
        Ok(_) if !others_rw => Some(format!(
            "{TUN} is not usable from the container's user namespace: on a normal system udev makes it mode 0666"
        )),
        _ => None,
    }
}

/// The host's own addresses, on every interface, loopback excepted: through pasta a
/// connection to any of them reaches the host's services that listen on all addresses.
pub fn host_addresses() -> Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list it allocates, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(Errno::last()).context("listing the host's addresses");
    }
    let mut addrs = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not yet freed.
        let ifaddr = unsafe { &*entry };
        entry = ifaddr.ifa_next;
        let address = ifaddr.ifa_addr;
        if address.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_addr points to a sockaddr whose family says its real type,
        // sockaddr_in for AF_INET and sockaddr_in6 for AF_INET6.
        let ip = unsafe {
            match (*address).sa_family as i32 {
                libc::AF_INET => {
                    let v4 = &*(address as *const libc::sockaddr_in);
                    IpAddr::from(v4.sin_addr.s_addr.to_ne_bytes())
                }
                libc::AF_INET6 => {
                    let v6 = &*(address as *const libc::sockaddr_in6);
                    IpAddr::from(v6.sin6_addr.s6_addr)
                }
                _ => continue,
            }
        };
        if !ip.is_loopback() && !addrs.contains(&ip) {
            addrs.push(ip);
        }
    }
    // SAFETY: the list came from getifaddrs and nothing points into it any more.
    unsafe { libc::freeifaddrs(list) };
    Ok(addrs)
}

/// Adds a routing rule `to ADDRESS prohibit` for each address to the caller's network
/// namespace (as `ip rule add to ADDRESS prohibit` would), so that connecting to them fails
/// with EACCES. Rules rather than routes: a prohibit route does not stop a connection to an
/// IPv6 link-local address, which names its interface; a rule does. The container's own
/// addresses stay reachable: the local table comes before these rules.
/// The caller must be root in the user namespace that owns the network namespace.
pub fn prohibit_destinations(addrs: &[IpAddr]) -> Result<()> {
    if addrs.is_empty() {
        return Ok(());
    }
    // SAFETY: socket() takes no pointers; a non-negative return is a new descriptor that
    // nothing else owns.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(Errno::last()).context("opening a netlink socket");
    }
    // SAFETY: see above: the descriptor was just created and is owned here alone.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    for (seq, addr) in addrs.iter().enumerate() {
        let message = rule_message(addr, seq as u32 + 1);
        // SAFETY: send reads message.len() bytes of the buffer we own.
        let sent =
            unsafe { libc::send(sock.as_raw_fd(), message.as_ptr().cast(), message.len(), 0) };
        if sent < 0 {
            return Err(Errno::last()).with_context(|| format!("blocking {addr}"));
        }
        let mut answer = [0u8; 1024];
        // SAFETY: recv writes at most answer.len() bytes into the buffer we own.
        let got = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                answer.as_mut_ptr().cast(),
                answer.len(),
                0,
            )
        };
        if got < 0 {
            return Err(Errno::last()).with_context(|| format!("blocking {addr}"));
        }
        match ack_error(&answer[..got as usize]) {
            0 => {}
            // Already there, or no IPv6 in this kernel: nothing to block.
            e if e == -libc::EEXIST || e == -libc::EAFNOSUPPORT => {}
            e => {
                return Err(Errno::from_raw(-e)).with_context(|| format!("blocking {addr}"));
            }
        }
    }
    Ok(())
}

/// An RTM_NEWRULE request: `to ADDR/len prohibit`.
fn rule_message(addr: &IpAddr, seq: u32) -> Vec<u8> {
    const RTM_NEWRULE: u16 = 32;
    const FRA_DST: u16 = 1;
    const FR_ACT_PROHIBIT: u8 = 8;
    let (family, bytes) = match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    let attr_len = 4 + bytes.len();
    let total = 16 + 12 + attr_len.next_multiple_of(4);
    let flags =
        (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    let mut m = Vec::with_capacity(total);
    // struct nlmsghdr
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&RTM_NEWRULE.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags
    m.extend_from_slice(&[
        family,
        (bytes.len() * 8) as u8,
        0,
        0,
        0,
        0,
        0,
        FR_ACT_PROHIBIT,
    ]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct rtattr FRA_DST
    m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    m.extend_from_slice(&FRA_DST.to_ne_bytes());
    m.extend_from_slice(&bytes);
    m.resize(total, 0);
    m
}

/// The error number of a netlink acknowledgement (0 for success; negative errno).
fn ack_error(answer: &[u8]) -> i32 {
    const NLMSG_ERROR: u16 = 2;
    if answer.len() < 20 {
        return -libc::EPROTO;
    }
    let kind = u16::from_ne_bytes([answer[4], answer[5]]);
    if kind != NLMSG_ERROR {
        return -libc::EPROTO;
    }
    i32::from_ne_bytes([answer[16], answer[17], answer[18], answer[19]])
}

#[cfg(test)]
mod tests;
