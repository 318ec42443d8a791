//! Tests of common::net.
//!
//! Parsing and option checks run anywhere. The others run real processes: `unshare -Urn`
//! (unprivileged user namespaces), `nsenter` and `ip` (util-linux, iproute2), `busybox`
//! (ping) and pasta (Debian package passt). Those marked `#[ignore]` also need
//! /dev/net/tun usable by the caller (mode 0666, as udev makes it); see bench/pasta-notes.md
//! for how to run them as root and as an unprivileged user.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Output;

// ---------------------------------------------------------------------------------------------
// Parsing and checks

#[test]
fn net_modes_parse_by_name() {
    for (word, mode) in [
        ("private", NetMode::Private),
        ("host", NetMode::Host),
        ("pasta", NetMode::Pasta),
    ] {
        assert_eq!(word.parse::<NetMode>().unwrap(), mode);
        assert_eq!(mode.to_string(), word);
        // clap accepts the same words.
        assert_eq!(
            <NetMode as clap::ValueEnum>::from_str(word, false).unwrap(),
            mode
        );
    }
    assert_eq!(NetMode::default(), NetMode::Private);
    assert_eq!(NetMode::NAMES, ["private", "host", "pasta"]);
}

#[test]
fn unknown_net_mode_is_named() {
    for word in ["slirp", "", "Pasta", "host "] {
        let err = word.parse::<NetMode>().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("unknown network mode '{word}' (expected private, host or pasta)")
        );
    }
}

#[test]
fn only_host_mode_shares_the_namespace() {
    assert!(NetMode::Private.new_namespace());
    assert!(NetMode::Pasta.new_namespace());
    assert!(!NetMode::Host.new_namespace());
}

fn publish(host: u16, container: u16, proto: Proto) -> Publish {
    Publish {
        host,
        container,
        proto,
    }
}

#[test]
fn publish_forms_parse() {
    for (text, want) in [
        ("8080", publish(8080, 8080, Proto::Tcp)),
        ("8080:80", publish(8080, 80, Proto::Tcp)),
        ("8080:80/tcp", publish(8080, 80, Proto::Tcp)),
        ("53/udp", publish(53, 53, Proto::Udp)),
        ("5353:53/udp", publish(5353, 53, Proto::Udp)),
        ("1:65535", publish(1, 65535, Proto::Tcp)),
        ("0080", publish(80, 80, Proto::Tcp)),
    ] {
        assert_eq!(text.parse::<Publish>().unwrap(), want, "{text}");
    }
    assert_eq!(publish(8080, 80, Proto::Udp).to_string(), "8080:80/udp");
}

#[test]
fn malformed_publish_names_the_bad_word() {
    for (text, message) in [
        ("0", "port '0' in '0' is out of range 1-65535"),
        ("65536", "port '65536' in '65536' is out of range 1-65535"),
        ("8080:0", "port '0' in '8080:0' is out of range 1-65535"),
        (
            "99999999999999999999",
            "port '99999999999999999999' in '99999999999999999999' is out of range 1-65535",
        ),
        ("80x", "port '80x' in '80x' is not a number"),
        ("-1", "port '-1' in '-1' is not a number"),
        ("+80", "port '+80' in '+80' is not a number"),
        (" 80", "port ' 80' in ' 80' is not a number"),
        ("8080:http", "port 'http' in '8080:http' is not a number"),
        ("", "missing port number in ''"),
        ("8080:", "missing port number in '8080:'"),
        (":80", "missing port number in ':80'"),
        ("/udp", "missing port number in '/udp'"),
        (
            "1:2:3",
            "'1:2:3' has more than two ports (expected HOSTPORT[:CONTAINERPORT])",
        ),
        (
            "80/sctp",
            "unknown protocol 'sctp' in '80/sctp' (expected tcp or udp)",
        ),
        (
            "80/TCP",
            "unknown protocol 'TCP' in '80/TCP' (expected tcp or udp)",
        ),
        ("80/", "unknown protocol '' in '80/' (expected tcp or udp)"),
        (
            "80/tcp/udp",
            "unknown protocol 'tcp/udp' in '80/tcp/udp' (expected tcp or udp)",
        ),
    ] {
        let err = text.parse::<Publish>().unwrap_err().to_string();
        assert_eq!(err, message, "{text:?}");
    }
}

/// A host port nobody holds for TCP or UDP, on any address: what check_options accepts.
fn unused_port() -> u16 {
    loop {
        let port = TcpListener::bind("[::]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let free = |addr: &str| {
            TcpListener::bind((addr, port)).is_ok() && UdpSocket::bind((addr, port)).is_ok()
        };
        if free("0.0.0.0") && free("::") {
            return port;
        }
    }
}

#[test]
fn publishing_needs_pasta() {
    let port = unused_port();
    let ports = [publish(port, 80, Proto::Tcp)];
    for mode in [NetMode::Private, NetMode::Host] {
        let err = check_options(mode, &ports, false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("publishing port {port}/tcp needs --net pasta (the network mode is {mode})")
        );
    }
    check_options(NetMode::Pasta, &ports, false).unwrap();
    for mode in [NetMode::Private, NetMode::Host, NetMode::Pasta] {
        check_options(mode, &[], false).unwrap();
    }
}

#[test]
fn a_host_port_is_published_once_per_protocol() {
    let port = unused_port();
    let twice = [publish(port, 80, Proto::Tcp), publish(port, 81, Proto::Tcp)];
    let err = check_options(NetMode::Pasta, &twice, false)
        .unwrap_err()
        .to_string();
    assert_eq!(err, format!("host port {port}/tcp is published twice"));
    let both = [publish(port, 53, Proto::Tcp), publish(port, 53, Proto::Udp)];
    check_options(NetMode::Pasta, &both, false).unwrap();
}

#[test]
fn a_host_port_another_program_holds_is_refused() {
    // Held on one IPv4 address only: pasta would still bind it for IPv6 and run.
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let err = check_options(NetMode::Pasta, &[publish(port, 80, Proto::Tcp)], false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("host port {port}/tcp is in use by another program")
    );

    let udp = UdpSocket::bind("[::]:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let err = check_options(NetMode::Pasta, &[publish(port, 53, Proto::Udp)], false)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("host port {port}/udp is in use by another program")
    );
}

#[test]
fn pasta_forwards_only_what_is_published() {
    let (uid, gid) = (1000, 1000);
    let user = PastaUser::Caller { uid, gid };
    let target = Pid::from_raw(4242);
    let common = [
        "--foreground".to_string(),
        "--quiet".into(),
        "--config-net".into(),
        "--runas".into(),
        format!("{uid}:{gid}"),
        "--pid".into(),
        "/proc/self/fd/1".into(),
    ];
    let closed = PastaSetup {
        publish: &[],
        host_loopback: false,
        root_on_host: (uid, gid),
    };

    let mut want = common.to_vec();
    want.extend(
        [
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            "none",
            "-U",
            "none",
            "--no-map-gw",
            "4242",
        ]
        .map(String::from),
    );
    assert_eq!(pasta_args(target, &closed, &user), want);

    let ports = [
        publish(8080, 80, Proto::Tcp),
        publish(5353, 53, Proto::Udp),
        publish(443, 443, Proto::Tcp),
    ];
    let mut want = common.to_vec();
    want.extend(
        [
            "-t",
            "8080:80,443",
            "-u",
            "5353:53",
            "-T",
            "none",
            "-U",
            "none",
            "4242",
        ]
        .map(String::from),
    );
    let open = PastaSetup {
        publish: &ports,
        host_loopback: true,
        ..closed
    };
    assert_eq!(pasta_args(target, &open, &user), want);
}

#[test]
fn pasta_for_root_enters_the_namespaces_as_container_root() {
    let devnull = || std::fs::File::open("/dev/null").unwrap().into();
    let user = PastaUser::ContainerRoot {
        user_ns: devnull(),
        net_ns: devnull(),
    };
    let PastaUser::ContainerRoot { net_ns, .. } = &user else {
        unreachable!()
    };
    let setup = PastaSetup {
        publish: &[],
        host_loopback: false,
        root_on_host: (100000, 100000),
    };
    let args = pasta_args(Pid::from_raw(4242), &setup, &user);
    let tail: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(&tail[3..5], ["--runas", "0:0"]);
    assert_eq!(
        tail[tail.len() - 3..],
        [
            "--netns-only",
            "--netns",
            &format!("/proc/self/fd/{}", net_ns.as_raw_fd())
        ]
    );
    assert!(!tail.contains(&"4242"), "{tail:?}");
}

#[test]
fn allowing_the_hosts_loopback_needs_pasta() {
    for mode in [NetMode::Private, NetMode::Host] {
        let err = check_options(mode, &[], true).unwrap_err().to_string();
        assert_eq!(err, "--allow-host-loopback needs --net pasta");
    }
    check_options(NetMode::Pasta, &[], true).unwrap();
}

#[test]
fn pasta_message_is_its_last_meaningful_line() {
    let said = b"Failed to send 51 bytes to syslog\nTemplate interface: eth0 (IPv4)\n\
                 Failed to send 32 bytes to syslog\nNamespace interface: eth0\n\
                 Failed to send 83 bytes to syslog\n\
                 Couldn't open user namespace /proc/9/ns/user: No such file or directory\n\n";
    assert_eq!(
        last_message(said).as_deref(),
        Some("Couldn't open user namespace /proc/9/ns/user: No such file or directory")
    );
    assert_eq!(
        last_message(b"pasta: Failed to bind any port\n").as_deref(),
        Some("Failed to bind any port")
    );
    assert_eq!(last_message(b"Failed to send 5 bytes to syslog\n \n"), None);
    assert_eq!(last_message(b""), None);
}

#[test]
fn missing_pasta_names_its_package() {
    let err = Pasta::start_program(
        "pasta-is-not-installed-here",
        nix::unistd::getpid(),
        &setup(&[]),
    )
    .err()
    .expect("a program that does not exist cannot start");
    assert_eq!(
        err.to_string(),
        "--net pasta needs pasta-is-not-installed-here, which is not installed (Debian package passt provides it)"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers for the live tests

/// Set in a re-executed copy of this test binary to give it its helper role.
const ROLE: &str = "COMMON_NET_TEST_ROLE";

/// Runs the test `name` of this binary again, alone, with `ROLE` set to `role`, under the
/// `wrapper` command line (none, or e.g. `unshare -Urn`).
fn rerun(name: &str, role: &str, wrapper: &[&str]) -> Command {
    let me = std::env::current_exe().expect("the test binary's path");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(me);
            c
        }
        None => Command::new(me),
    };
    command
        .args([
            name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role);
    command
}

/// A process in new user and network namespaces, as a held container init is: the target
/// pasta is started on. Its root is the caller, or for real root [`ROOT_ELSEWHERE`] (as
/// contain's default map for root makes it). Killed and reaped when dropped.
struct Target {
    child: Child,
}

/// Container root's host uid and gid in a [`Target`] made by real root.
const ROOT_ELSEWHERE: u32 = u32::MAX - 1;

/// Who container root is on the host in a [`Target`].
fn target_root() -> (u32, u32) {
    if nix::unistd::geteuid().is_root() {
        (ROOT_ELSEWHERE, ROOT_ELSEWHERE)
    } else {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    }
}

/// How a test's pasta connects a [`Target`]: `publish`, the host's loopback closed.
fn setup(publish: &[Publish]) -> PastaSetup<'_> {
    PastaSetup {
        publish,
        host_loopback: false,
        root_on_host: target_root(),
    }
}

impl Target {
    fn new() -> Target {
        let root = nix::unistd::geteuid().is_root();
        let map: &[&str] = if root { &[] } else { &["--map-root-user"] };
        let child = Command::new("unshare")
            .args(["--user", "--net"])
            .args(map)
            .args(["sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("running unshare (util-linux)");
        let target = Target { child };
        // unshare execs sleep once the namespaces (and maps) exist.
        let comm = format!("/proc/{}/comm", target.child.id());
        wait_for("the target to be in its namespaces", || {
            std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")
        });
        if root {
            let (uid, gid) = target_root();
            for (file, id) in [("uid_map", uid), ("gid_map", gid)] {
                std::fs::write(
                    format!("/proc/{}/{file}", target.child.id()),
                    format!("0 {id} 1\n"),
                )
                .unwrap();
            }
        }
        target
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Runs a command in the target's user and network namespaces.
    fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.pid().to_string(),
                "-U",
                "-n",
                "--preserve-credentials",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running nsenter (util-linux)")
    }

    /// The standard output of a command run inside, which must succeed.
    fn stdout(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} inside failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until something listens inside on `port` (tcp: LISTEN; udp: bound).
    fn wait_listening(&self, proto: Proto, port: u16) {
        let files = match proto {
            Proto::Tcp => ["tcp", "tcp6"],
            Proto::Udp => ["udp", "udp6"],
        };
        let local = format!(":{port:04X} ");
        wait_for("a server inside", || {
            files.iter().any(|f| {
                let table = std::fs::read_to_string(format!("/proc/{}/net/{f}", self.pid()))
                    .unwrap_or_default();
                table.lines().skip(1).any(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    fields.len() > 3
                        && format!("{} ", fields[1]).ends_with(&local)
                        && (proto == Proto::Udp || fields[3] == "0A")
                })
            })
        });
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether `pid` is a live pasta (its program shows as passt, passt.avx2, pasta...).
fn is_live_pasta(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
    (comm.starts_with("pasta") || comm.starts_with("passt")) && state != "Z" && state != "X"
}

/// The live pastas serving `target` (their last argument; for root's, a descriptor of theirs
/// that is its network namespace), whoever started them.
fn pastas_for(target: Pid) -> Vec<Pid> {
    let net_ns = std::fs::read_link(format!("/proc/{target}/ns/net")).ok();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .map(Pid::from_raw)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let last = cmdline.split(|b| *b == 0).rfind(|a| !a.is_empty());
            let holds_net_ns = || {
                std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                    fds.flatten()
                        .any(|fd| std::fs::read_link(fd.path()).ok() == net_ns)
                })
            };
            last == Some(target.to_string().as_bytes()) || (net_ns.is_some() && holds_net_ns())
        })
        .filter(|pid| is_live_pasta(*pid))
        .collect()
}

/// A port nothing listens on now, on the loopback address, for `proto`.
fn free_port(proto: Proto) -> u16 {
    match proto {
        Proto::Tcp => TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        Proto::Udp => UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    }
}

/// The IPv4 default gateway inside: the address pasta maps to the host's 127.0.0.1.
fn gateway(target: &Target) -> String {
    let routes = target.stdout(&["ip", "-4", "route", "show", "default"]);
    let words: Vec<&str> = routes.split_whitespace().collect();
    let via = words
        .iter()
        .position(|w| *w == "via")
        .expect("a default route via a gateway");
    words[via + 1].to_string()
}

// ---------------------------------------------------------------------------------------------
// Live tests that need no /dev/net/tun

/// Helper role: root in a new user and network namespace, as a container's init is.
fn loopback_in_new_namespace() {
    let before = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = TcpStream::connect(before.local_addr().unwrap()).unwrap_err();
    assert_eq!(
        refused.raw_os_error(),
        Some(libc::ENETUNREACH),
        "lo of a new network namespace starts down"
    );
    bring_up_loopback().expect("bringing lo up");
    bring_up_loopback().expect("bringing lo up a second time");
    let listener = TcpListener::bind("127.0.0.1:0").expect("127.0.0.1 after lo is up");
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"over lo\n").unwrap();
    let mut line = String::new();
    BufReader::new(&mut server).read_line(&mut line).unwrap();
    assert_eq!(line, "over lo\n");
    TcpListener::bind("[::1]:0").expect("::1 after lo is up");
    let ping = Command::new("busybox")
        .args(["ping", "-c", "1", "-W", "2", "127.0.0.1"])
        .output()
        .expect("running busybox ping");
    assert!(
        ping.status.success(),
        "ping 127.0.0.1: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
}

#[test]
fn loopback_comes_up_in_a_new_namespace() {
    if std::env::var(ROLE).as_deref() == Ok("loopback") {
        return loopback_in_new_namespace();
    }
    let out = rerun(
        "net::tests::loopback_comes_up_in_a_new_namespace",
        "loopback",
        &["unshare", "-Urn"],
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "in the new namespace: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("1 passed"), "the helper ran: {said}");
}

#[test]
fn failing_pasta_says_why_and_leaves_nothing() {
    // A PID nobody has: one that just ended and was reaped.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let pid = Pid::from_raw(gone.id() as i32);
    let err = Pasta::start(pid, &setup(&[]))
        .err()
        .expect("pasta cannot join a process that is gone");
    let why = if nix::unistd::geteuid().is_root() {
        // Root's pasta gets the namespaces from us.
        format!("opening /proc/{pid}/ns/user for pasta: ENOENT: No such file or directory")
    } else {
        format!("pasta failed: Couldn't open user namespace /proc/{pid}/ns/user: No such file or directory")
    };
    assert_eq!(crate::errors::one_line(&err), why);
    assert_eq!(pastas_for(pid), vec![]);
}

#[test]
fn publishing_a_busy_port_fails_with_pastas_message() {
    let target = Target::new();
    // Taken for IPv4 and IPv6, so pasta can bind it nowhere.
    let busy = TcpListener::bind("[::]:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = Pasta::start(target.pid(), &setup(&[publish(port, 80, Proto::Tcp)]))
        .err()
        .expect("a busy host port cannot be published");
    assert_eq!(
        err.to_string(),
        format!("pasta failed: Failed to bind any port for '-t {port}:80', exiting")
    );
    assert_eq!(pastas_for(target.pid()), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Live tests that need /dev/net/tun usable by the caller

#[test]
#[ignore = "needs /dev/net/tun usable by the caller (mode 0666)"]
fn pasta_connects_the_namespace() {
    let target = Target::new();
    // The supervisor blocks these for its signalfd; pasta must not inherit that.
    let mut blocked = nix::sys::signal::SigSet::empty();
    blocked.add(nix::sys::signal::Signal::SIGCHLD);
    blocked.add(nix::sys::signal::Signal::SIGTERM);
    let mut old = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&blocked),
        Some(&mut old),
    )
    .unwrap();
    let started = Pasta::start(target.pid(), &setup(&[]));
    nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None)
        .unwrap();
    let pasta = started.unwrap();
    assert!(is_live_pasta(pasta.pid()));

    // Configured by the time start returns, without waiting.
    let addresses = target.stdout(&["ip", "-o", "addr", "show", "scope", "global"]);
    assert!(
        addresses.lines().any(|l| l.contains(" inet ")),
        "a global IPv4 address inside: {addresses}"
    );
    let default = target.stdout(&["ip", "route", "show", "default"]);
    assert!(
        default.starts_with("default via "),
        "a default route inside: {default}"
    );
    let lo = target.stdout(&["ip", "-o", "addr", "show", "dev", "lo"]);
    assert!(lo.contains("inet 127.0.0.1/8"), "lo up inside: {lo}");

    let status = std::fs::read_to_string(format!("/proc/{}/status", pasta.pid())).unwrap();
    assert!(
        status.lines().any(|l| l == "SigBlk:\t0000000000000000"),
        "pasta blocks no signals: {status}"
    );

    let pid = pasta.pid();
    pasta.stop();
    assert!(!is_live_pasta(pid));
    assert_eq!(pastas_for(target.pid()), vec![]);
}

/// Starts this test binary's test `name` in the helper role `role`, inside the target's user
/// and network namespaces, with its stdout piped for [`helper_result`]. Helpers print on
/// lines of their own: libtest has written "test NAME ... " without a newline before.
fn helper_inside(target: &Target, name: &str, role: &str) -> Child {
    let pid = target.pid().to_string();
    let mut nsenter = vec!["nsenter", "-t", &pid, "-U", "-n"];
    // Root is nobody in a target whose root is another host uid: become that one.
    if !nix::unistd::geteuid().is_root() {
        nsenter.push("--preserve-credentials");
    }
    rerun(name, role, &nsenter)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a helper printed after `got=`, once it has ended.
fn helper_result(mut helper: Child) -> Option<String> {
    let out = helper.stdout.take().unwrap();
    let got = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("got=").map(String::from));
    let _ = helper.wait();
    got
}

/// Helper role, inside: connect to `address`, read until the server closes, print it.
fn tcp_client(address: &str) {
    let mut conn = TcpStream::connect(address).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut said = String::new();
    conn.read_to_string(&mut said).unwrap();
    println!("\ngot={}", said.trim_end());
}

#[test]
#[ignore = "needs /dev/net/tun usable by the caller (mode 0666)"]
fn host_loopback_is_reachable_at_the_gateway() {
    const NAME: &str = "net::tests::host_loopback_is_reachable_at_the_gateway";
    if let Some(address) = std::env::var(ROLE)
        .ok()
        .and_then(|r| r.strip_prefix("tcp client ").map(String::from))
    {
        return tcp_client(&address);
    }
    let target = Target::new();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = host.accept().unwrap();
        conn.write_all(b"hello from the host's loopback\n").unwrap();
    });
    let allowed = PastaSetup {
        host_loopback: true,
        ..setup(&[])
    };
    let _pasta = Pasta::start(target.pid(), &allowed).unwrap();
    let role = format!("tcp client {}:{port}", gateway(&target));
    let client = helper_inside(&target, NAME, &role);
    assert_eq!(
        helper_result(client).as_deref(),
        Some("hello from the host's loopback")
    );
    server.join().unwrap();
}

/// Helper role, inside: accept one connection on TCP port 80, answer it, print what came.
fn tcp_server() {
    let listener = TcpListener::bind("0.0.0.0:80").unwrap();
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::from(10_000u16)).unwrap();
    assert_eq!(ready, 1, "no connection came within 10 s");
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).unwrap();
    conn.write_all(b"hello from inside\n").unwrap();
    println!("\ngot={}", line.trim_end());
}

#[test]
#[ignore = "needs /dev/net/tun usable by the caller (mode 0666)"]
fn published_tcp_port_reaches_the_container() {
    const NAME: &str = "net::tests::published_tcp_port_reaches_the_container";
    if std::env::var(ROLE).as_deref() == Ok("tcp server") {
        return tcp_server();
    }
    let target = Target::new();
    let port = free_port(Proto::Tcp);
    let _pasta = Pasta::start(target.pid(), &setup(&[publish(port, 80, Proto::Tcp)])).unwrap();
    let server = helper_inside(&target, NAME, "tcp server");
    target.wait_listening(Proto::Tcp, 80);

    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"hello from the host\n").unwrap();
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).unwrap();
    assert_eq!(line, "hello from inside\n");
    assert_eq!(
        helper_result(server).as_deref(),
        Some("hello from the host")
    );
}

/// Helper role, inside the target's namespaces: receive one datagram on UDP port 5353 and
/// print it on a line of its own (Debian's busybox nc has no UDP mode).
fn udp_receiver() {
    let socket = UdpSocket::bind("0.0.0.0:5353").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    println!("\ngot={}", String::from_utf8_lossy(&buf[..n]).trim_end());
}

#[test]
#[ignore = "needs /dev/net/tun usable by the caller (mode 0666)"]
fn published_udp_port_reaches_the_container() {
    if std::env::var(ROLE).as_deref() == Ok("udp receiver") {
        return udp_receiver();
    }
    let target = Target::new();
    let port = free_port(Proto::Udp);
    let _pasta = Pasta::start(target.pid(), &setup(&[publish(port, 5353, Proto::Udp)])).unwrap();
    let receiver = helper_inside(
        &target,
        "net::tests::published_udp_port_reaches_the_container",
        "udp receiver",
    );
    target.wait_listening(Proto::Udp, 5353);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(b"datagram from the host", ("127.0.0.1", port))
        .unwrap();
    assert_eq!(
        helper_result(receiver).as_deref(),
        Some("datagram from the host")
    );
}

#[test]
#[ignore = "needs /dev/net/tun usable by the caller (mode 0666)"]
fn dropping_pasta_ends_it() {
    let target = Target::new();
    let pasta = Pasta::start(target.pid(), &setup(&[])).unwrap();
    let pid = pasta.pid();
    assert!(is_live_pasta(pid));
    drop(pasta);
    assert!(!is_live_pasta(pid));
    assert_eq!(pastas_for(target.pid()), vec![]);
}

/// Helper role: a supervisor that starts pasta on the target named in the role, says the
/// PID, and waits to be killed.
fn supervisor(target: &str) {
    let target = Pid::from_raw(target.parse().unwrap());
    let pasta = Pasta::start(target, &setup(&[])).unwrap();
    // libtest has printed "test NAME ... " without a newline: start a line of our own.
    println!("\npasta-pid={}", pasta.pid());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
#[ignore = "needs /dev/net/tun usable by the caller (mode 0666)"]
fn pasta_dies_with_a_killed_supervisor() {
    if let Some(target) = std::env::var(ROLE)
        .ok()
        .and_then(|r| r.strip_prefix("supervisor ").map(String::from))
    {
        return supervisor(&target);
    }
    let target = Target::new();
    let mut helper = rerun(
        "net::tests::pasta_dies_with_a_killed_supervisor",
        &format!("supervisor {}", target.pid()),
        &[],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(helper.stdout.take().unwrap());
    let pasta = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the helper ended without starting pasta"
        );
        if let Some(pid) = line.trim().strip_prefix("pasta-pid=") {
            break Pid::from_raw(pid.parse().unwrap());
        }
    };
    assert!(is_live_pasta(pasta));
    helper.kill().unwrap(); // SIGKILL
    helper.wait().unwrap();
    wait_for("pasta to die with its parent", || !is_live_pasta(pasta));
}

#[test]
#[ignore = "needs /dev/net/tun NOT usable by the caller: run as a user while it is mode 0600"]
fn refused_tun_is_explained() {
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_ok();
    assert!(
        !usable,
        "precondition: /dev/net/tun must be refused to the caller for this test"
    );
    let target = Target::new();
    let err = Pasta::start(target.pid(), &setup(&[]))
        .err()
        .expect("pasta cannot work without tun");
    let err = err.to_string();
    assert!(
        err.starts_with(
            "pasta failed: /dev/net/tun is not usable by you: on a normal system udev makes it mode 0666"
        ),
        "{err}"
    );
    assert_eq!(pastas_for(target.pid()), vec![]);
}

#[test]
fn the_host_has_addresses_but_no_loopback_among_them() {
    let addrs = host_addresses().unwrap();
    assert!(addrs.iter().all(|a| !a.is_loopback()), "{addrs:?}");
}

#[test]
fn rule_messages_are_aligned() {
    let m = rule_message(&"192.0.2.1".parse().unwrap(), 1);
    assert_eq!(m.len(), 16 + 12 + 8);
    assert_eq!(m[17], 32);
    let m = rule_message(&"fe80::1".parse().unwrap(), 2);
    assert_eq!(m.len(), 16 + 12 + 20);
    assert_eq!(m[17], 128);
}
