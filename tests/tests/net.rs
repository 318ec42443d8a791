//! Integration tests of the container's network: `contain --net private|host|pasta` and
//! `-p/--publish`, as the unprivileged test user in a busybox container (`-c`).
//!
//! The checks are what a user makes: `ip` and `ping` inside, a server on the host's loopback
//! reached from inside at the gateway address, a server inside reached from the host through a
//! published port, `inject` seeing the same interface, and no pasta left running afterwards,
//! whether the container ended normally, contain was killed with SIGKILL or the options were
//! refused.
//!
//! Servers the tests start listen on 127.0.0.1 or inside the container. Published host ports
//! come from [`free_port`], below the kernel's ephemeral range and spread by the test process's
//! PID, so that tests running at the same time do not compete for them.

use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use tests::*;

/// How long one network exchange (connect, request, response) may take before the test
/// retries or gives up.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// A line the container's scripts echo between the outputs of two commands.
const SEPARATOR: &str = "==net-test==";

/// The outputs of a script's commands, split at the [`SEPARATOR`] lines.
fn sections(text: &str) -> Vec<&str> {
    text.split(&format!("{SEPARATOR}\n")).collect()
}

/// `contain -c --net pasta OPTIONS... ROOT CMD...` as the test user.
fn pasta_command(options: &[&str], root: &TempDir, cmd: &[&str]) -> std::process::Command {
    contain_command(
        As::User,
        &[&["-c", "--net", "pasta"], options].concat(),
        root,
        cmd,
    )
}

/// A host port that nothing listens on for TCP or UDP, IPv4 or IPv6, and that no other test of
/// this process gets. The ports lie below the kernel's ephemeral range (32768 and up by
/// default), so no outgoing connection takes one meanwhile.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    const FIRST: u16 = 20000;
    const SPAN: u16 = 10000;
    let start = (std::process::id() % 1000) as u16 * 10;
    for _ in 0..SPAN {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        if port_is_free(port) {
            return port;
        }
    }
    panic!("no free port in {FIRST}-{}", FIRST + SPAN - 1);
}

fn port_is_free(port: u16) -> bool {
    let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    // Only "in use" counts: a host without IPv6 refuses [::] for another reason.
    let taken = |e: std::io::Error| e.kind() == ErrorKind::AddrInUse;
    !(TcpListener::bind(v4).err().is_some_and(taken)
        || UdpSocket::bind(v4).err().is_some_and(taken)
        || TcpListener::bind(v6).err().is_some_and(taken)
        || UdpSocket::bind(v6).err().is_some_and(taken))
}

/// Whether `p` is a pasta: `pasta` in its command line, `passt` or `passt.avx2` as its command
/// name once it has re-executed itself.
fn is_pasta(p: &Process) -> bool {
    let program = p
        .cmdline
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    [comm(p.pid), program]
        .iter()
        .any(|name| name.starts_with("pasta") || name.starts_with("passt"))
}

fn is_contain(p: &Process) -> bool {
    p.cmdline
        .first()
        .is_some_and(|a| a.rsplit('/').next() == Some("contain"))
}

/// When a process started, in clock ticks since boot (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 2..)?
        .split(' ')
        .nth(19)?
        .parse()
        .ok()
}

/// The test user's live pastas that no contain (or pasta, for its helpers) is the parent of,
/// started since this test process (a user's own pasta from before, e.g. podman's, is not ours).
fn orphaned_pastas() -> Vec<Process> {
    let since = start_time(std::process::id()).expect("reading our own start time");
    test_user_processes()
        .into_iter()
        .filter(is_pasta)
        .filter(|p| start_time(p.pid).is_some_and(|t| t >= since))
        .filter(|p| !process(p.ppid).is_some_and(|parent| is_contain(&parent) || is_pasta(&parent)))
        .collect()
}

/// Waits until no pasta of the test user runs without its contain. A pasta whose contain was
/// just killed lives on for a moment until its parent-death signal ends it, in this test or in
/// one running beside it; one that stays fails the test.
#[track_caller]
fn expect_no_orphaned_pasta() {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = orphaned_pastas();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pasta left running without its contain: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for the pasta that contain (`contain_pid`) started and returns its PID.
#[track_caller]
fn pasta_of(contain_pid: u32) -> u32 {
    wait_for(&format!("contain ({contain_pid}) to start pasta"), || {
        children_of(contain_pid)
            .into_iter()
            .find(|p| !matches!(p.state, 'Z' | 'X') && is_pasta(p))
            .map(|p| p.pid)
    })
}

/// Asserts that the pasta `pid` has ended and been reaped (a zombie would mean that contain
/// left it unreaped; a live process at that PID must at least not be a pasta).
#[track_caller]
fn expect_pasta_gone(pid: u32) {
    if let Some(p) = process(pid) {
        assert!(!is_pasta(&p), "pasta {pid} is still there: {p:?}");
    }
}

/// Runs `script` in a `--net pasta` container with `options` once the test has seen its pasta
/// (init waits for /tmp/go), and returns contain's output and pasta's PID.
fn run_with_pasta(options: &[&str], root: &TempDir, script: &str) -> (Output, u32) {
    run_with_pasta_as(As::User, options, root, script)
}

/// [`run_with_pasta`] as `who`.
fn run_with_pasta_as(who: As, options: &[&str], root: &TempDir, script: &str) -> (Output, u32) {
    let script = format!("while [ ! -e /tmp/go ]; do sleep 0.05; done; {script}");
    let options = [&["-c", "--net", "pasta"], options].concat();
    let contain = spawn(contain_command(
        who,
        &options,
        root,
        &["/bin/sh", "-c", &script],
    ));
    let pasta = pasta_of(contain.pid());
    root.write("tmp/go", "");
    (contain.finish(), pasta)
}

/// `(interface, address/prefix)` of each line of `ip -o -4 addr` output.
fn ipv4_addresses(ip_addr: &str) -> BTreeSet<(String, String)> {
    ip_addr
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let inet = words.iter().position(|w| *w == "inet")?;
            Some((words.get(1)?.to_string(), words.get(inet + 1)?.to_string()))
        })
        .collect()
}

/// The gateway of the default route in `ip route` output.
fn default_gateway(ip_route: &str) -> Option<String> {
    ip_route.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("default") && words.next() == Some("via"))
            .then(|| words.next().map(str::to_string))
            .flatten()
    })
}

/// Interface names in `ip -o link` output ("2: eth0: <...>" gives "eth0").
fn interface_names(ip_link: &str) -> BTreeSet<String> {
    ip_link
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect()
}

/// The host's global IPv4 addresses, as `ip -o -4 addr show scope global` shows them.
fn host_addresses() -> BTreeSet<(String, String)> {
    let out = sh(As::User, "ip -o -4 addr show scope global");
    ipv4_addresses(&expect_success(&out))
}

/// The host's default gateway.
fn host_gateway() -> String {
    let out = sh(As::User, "ip route");
    default_gateway(&expect_success(&out)).expect("the host has a default route")
}

/// Sends an HTTP/1.0 GET for `path` to `addr` and returns the whole response, or the error.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, EXCHANGE_TIMEOUT)?;
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    stream.set_write_timeout(Some(EXCHANGE_TIMEOUT))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Waits until a GET of `path` from `addr` answers 200 with `body`; a server inside that has
/// not bound its port yet gets the connection reset by pasta, so the first tries may fail.
#[track_caller]
fn expect_served(addr: SocketAddr, path: &str, body: &str) {
    let mut last = None;
    let found = wait_for_or_timeout(|| match http_get(addr, path) {
        Ok(response) if response.starts_with("HTTP/1.") && response.contains(body) => Some(()),
        other => {
            last = Some(other);
            None
        }
    });
    assert!(
        found.is_some(),
        "GET {path} from {addr} never answered {body:?}; last: {last:?}"
    );
}

/// Polls `find` every 50 ms until it finds something or [`TIMEOUT`] has passed.
fn wait_for_or_timeout<T>(mut find: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(found) = find() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Accepts one connection on `listener` (within [`TIMEOUT`]), reads an HTTP request, answers it
/// with `body` and returns the peer's address; None if nobody came.
fn serve_once(listener: TcpListener, body: String) -> Option<SocketAddr> {
    listener.set_nonblocking(true).ok()?;
    let (mut stream, peer) = wait_for_or_timeout(|| listener.accept().ok())?;
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT)).ok()?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let response = format!(
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).ok()?;
    Some(peer)
}

/// A busybox root with /www/index.html holding `body`, for `httpd -h /www`.
fn web_root(body: &str) -> TempDir {
    let root = busybox_rootfs();
    root.mkdir("www");
    root.write("www/index.html", body);
    root
}

/// The container's init for a server: a shell that ends with 0 on SIGTERM (which contain
/// forwards) and runs `server` in the background.
fn serving(server: &str) -> String {
    format!("trap 'exit 0' TERM; {server} & wait")
}

#[test]
fn private_network_has_only_loopback_up_and_ping_works() {
    for options in [&[][..], &["--net", "private"][..]] {
        let root = busybox_rootfs();
        let options = [&["-c"], options].concat();
        let script = format!(
            "ip -o link; echo {SEPARATOR}; ip link show lo; echo {SEPARATOR}; \
             ping -c1 -W2 127.0.0.1"
        );
        let out = contain(As::User, &options, &root, &["/bin/sh", "-c", &script]);
        let text = expect_success(&out);
        let parts = sections(&text);
        assert_eq!(parts.len(), 3, "{options:?}: {text}");
        assert_eq!(
            interface_names(parts[0]),
            BTreeSet::from(["lo".to_string()]),
            "{options:?}: {text}"
        );
        let flags = parts[1]
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(flags, _)| flags.split(',').collect::<Vec<_>>())
            .unwrap_or_default();
        assert!(flags.contains(&"UP"), "{options:?}: lo is not up: {text}");
        assert!(
            parts[2].contains("1 packets received"),
            "{options:?}: ping 127.0.0.1 got no answer: {text}"
        );
    }
}

#[test]
fn pasta_gives_the_hosts_address_and_a_default_route() {
    let root = busybox_rootfs();
    let script = format!("ip -o -4 addr show scope global; echo {SEPARATOR}; ip route");
    let (out, pasta) = run_with_pasta(&[], &root, &script);
    let text = expect_success(&out);
    let [addresses, routes] = sections(&text)[..] else {
        panic!("not two outputs: {text}");
    };

    let inside = ipv4_addresses(addresses);
    assert!(!inside.is_empty(), "no global IPv4 address inside: {text}");
    let host = host_addresses();
    for address in &inside {
        assert!(
            host.iter().any(|(_, a)| a == &address.1),
            "{address:?} inside is none of the host's addresses {host:?}"
        );
    }
    assert_eq!(
        default_gateway(routes),
        Some(host_gateway()),
        "the default route inside is not the host's: {text}"
    );
    expect_pasta_gone(pasta);
    expect_no_orphaned_pasta();
}

/// A server on the host's 127.0.0.1 that answers one GET with a fresh body, on a thread:
/// the body, the port, and the thread, which returns the peer that came (None if nobody did
/// within [`TIMEOUT`], or once `stop` is set).
struct LoopbackServer {
    body: String,
    port: u16,
    peer: std::sync::mpsc::Receiver<Option<SocketAddr>>,
}

impl LoopbackServer {
    fn start() -> LoopbackServer {
        Self::start_on(Ipv4Addr::LOCALHOST.into())
    }

    /// The same on another loopback address (::1).
    fn start_on(address: IpAddr) -> LoopbackServer {
        let listener =
            TcpListener::bind((address, 0)).unwrap_or_else(|e| panic!("binding {address}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let body = format!("from the host {}", unique_token());
        let (tx, peer) = std::sync::mpsc::channel();
        let answer = body.clone();
        std::thread::spawn(move || {
            let _ = tx.send(serve_once(listener, answer));
        });
        LoopbackServer { body, port, peer }
    }

    /// The peer of a connection that came within `limit`.
    fn visitor(&self, limit: Duration) -> Option<SocketAddr> {
        self.peer.recv_timeout(limit).ok().flatten()
    }
}

/// Inside: the default gateway, then what a GET of the loopback server at the gateway address
/// and at 127.0.0.1 brought (pasta forwards nothing from the host's loopback to the
/// container's: `-T none`).
fn fetch_from_host_loopback(port: u16) -> String {
    format!(
        "gw=$(ip route | sed -n 's/^default via \\([^ ]*\\) .*/\\1/p'); echo \"gateway $gw\"; \
         for a in $gw 127.0.0.1; do timeout 5 wget -q -O - \"http://$a:{port}/\"; echo; done"
    )
}

#[test]
fn a_server_on_the_hosts_loopback_is_out_of_reach_by_default() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let server = LoopbackServer::start();
        let root = busybox_rootfs();
        let (out, pasta) =
            run_with_pasta_as(who, &[], &root, &fetch_from_host_loopback(server.port));
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!("gateway {}\n", host_gateway())),
            "{who:?}: {}",
            describe(&out)
        );
        assert!(
            !text.contains(&server.body),
            "{who:?}: reached the host's loopback: {text}"
        );
        assert_eq!(server.visitor(Duration::ZERO), None, "{who:?}");
        expect_pasta_gone(pasta);
    }
    expect_no_orphaned_pasta();
}

/// True if the host has an IPv6 default route through a gateway, which pasta copies into the
/// container (from /proc/net/ipv6_route: destination ::/0, flag RTF_GATEWAY).
fn host_has_ipv6_gateway() -> bool {
    let table = fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    table.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() == 10
            && f[0].bytes().all(|b| b == b'0')
            && f[1] == "00"
            && u32::from_str_radix(f[8], 16).is_ok_and(|flags| flags & 0x2 != 0)
            && f[9] != "lo"
    })
}

/// The same over IPv6: a server on the host's ::1 is out of reach at the container's IPv6
/// gateway address, and reached there only with --allow-host-loopback.
#[test]
fn a_server_on_the_hosts_ipv6_loopback_is_out_of_reach_unless_allowed() {
    if !host_has_ipv6_gateway() {
        skip("the host has no IPv6 default route: pasta gives the container no IPv6 gateway");
        return;
    }
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        for (options, allowed) in [(&[][..], false), (&["--allow-host-loopback"][..], true)] {
            // Debian 12's pasta (2023-03-09) now and then loses every IPv6 connection to the
            // gateway of one instance (the neighbour reachable, a frame of its answer
            // misaddressed; see bench/pasta-notes.md): where the server must be reached, a new
            // container (and pasta) is tried up to three times, each failure shown. Where it
            // must not be, one container decides.
            let attempts = if allowed { 3 } else { 1 };
            let mut reached = false;
            for attempt in 1..=attempts {
                let server = LoopbackServer::start_on(Ipv6Addr::LOCALHOST.into());
                let root = busybox_rootfs();
                let script = format!(
                    "gw=$(ip -6 route | sed -n 's/^default via \\([^ ]*\\) .*/\\1/p'); \
                     echo \"gateway $gw\"; for try in 1 2 3; do \
                     timeout 5 wget -q -O - \"http://[$gw]:{}/\" && break; done; echo; \
                     ip -6 addr; ip -6 neigh; ip -6 route",
                    server.port
                );
                let (out, pasta) = run_with_pasta_as(who, options, &root, &script);
                let text = stdout(&out);
                assert!(
                    text.starts_with("gateway ") && !text.starts_with("gateway \n"),
                    "{who:?} {options:?}: no IPv6 gateway inside: {}",
                    describe(&out)
                );
                expect_pasta_gone(pasta);
                reached = text.contains(&server.body);
                if reached || !allowed {
                    break;
                }
                eprintln!(
                    "{who:?} {options:?}: attempt {attempt} of {attempts} did not reach the \
                     server (it saw {:?}): {}",
                    server.visitor(Duration::ZERO),
                    describe(&out)
                );
            }
            assert_eq!(reached, allowed, "{who:?} {options:?}");
        }
    }
    expect_no_orphaned_pasta();
}

#[test]
fn a_server_on_the_hosts_loopback_is_reached_at_the_gateway_address_when_allowed() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let server = LoopbackServer::start();
        let root = busybox_rootfs();
        let script = fetch_from_host_loopback(server.port);
        let (out, pasta) = run_with_pasta_as(who, &["--allow-host-loopback"], &root, &script);
        let text = stdout(&out);
        assert_eq!(
            text,
            format!("gateway {}\n{}\n\n", host_gateway(), server.body),
            "{who:?}: {}",
            describe(&out)
        );
        // pasta maps the gateway address to the host's loopback: the connection arrives from
        // 127.0.0.1, as pasta's own.
        let peer = server
            .visitor(TIMEOUT)
            .expect("the server got a connection");
        assert_eq!(peer.ip(), Ipv4Addr::LOCALHOST, "{who:?}: peer {peer}");
        expect_pasta_gone(pasta);
    }
    expect_no_orphaned_pasta();
}

#[test]
fn allowing_the_hosts_loopback_needs_pasta() {
    for options in [
        &["--allow-host-loopback"][..],
        &["--net", "host", "--allow-host-loopback"],
    ] {
        let line = expect_refused(options);
        assert!(
            line.ends_with("--allow-host-loopback needs --net pasta"),
            "{options:?}: {line}"
        );
    }
}

#[test]
fn pasta_run_by_root_runs_as_container_root_not_as_root() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs();
    let script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; ip -o -4 addr show scope global";
    let contain = spawn(contain_command(
        As::Root,
        &[
            "-c",
            "--net",
            "pasta",
            "-u",
            "0:300000:65536",
            "-g",
            "0:310000:65536",
        ],
        &root,
        &["/bin/sh", "-c", script],
    ));
    let pasta = pasta_of(contain.pid());
    let status = ProcStatus::of(pasta);
    root.write("tmp/go", "");
    let out = contain.finish();
    let text = expect_success(&out);
    // It did its work: the container has the host's address.
    assert_eq!(
        ipv4_addresses(&text),
        host_addresses(),
        "{}",
        describe(&out)
    );
    assert_eq!(status.ids("Uid"), [300000; 4], "pasta's uids");
    assert_eq!(status.ids("Gid"), [310000; 4], "pasta's gids");
    assert_eq!(status.field("Groups"), "", "pasta's supplementary groups");
    expect_pasta_gone(pasta);

    // With the default map: container root's host IDs, as init's maps say.
    let root = busybox_rootfs();
    let contain = spawn(contain_command(
        As::Root,
        &["-c", "--net", "pasta"],
        &root,
        &["/bin/sh", "-c", script],
    ));
    let pasta = pasta_of(contain.pid());
    let status = ProcStatus::of(pasta);
    // Held until pasta is ready: the child in a user namespace of its own.
    let user_ns = |pid: u32| fs::read_link(format!("/proc/{pid}/ns/user")).ok();
    let init = children_of(contain.pid())
        .into_iter()
        .find(|c| user_ns(c.pid) != user_ns(std::process::id()))
        .expect("the container's init");
    let root_on_host = |map: &str| -> u32 {
        let text = read(Path::new(&format!("/proc/{}/{map}", init.pid)));
        let fields: Vec<u32> = text
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .map(|n| n.parse().unwrap())
                    .collect::<Vec<u32>>()
            })
            .find(|f| f[0] == 0)
            .expect("container root is mapped");
        fields[1]
    };
    let (uid, gid) = (root_on_host("uid_map"), root_on_host("gid_map"));
    root.write("tmp/go", "");
    expect_success(&contain.finish());
    assert_eq!(status.ids("Uid"), [uid; 4], "pasta's uids");
    assert_eq!(status.ids("Gid"), [gid; 4], "pasta's gids");
    assert!(
        !status.ids("Uid").contains(&0),
        "pasta runs as root: {:?}",
        status.ids("Uid")
    );
    assert!(
        !status.ids("Gid").contains(&0),
        "pasta runs as group root: {:?}",
        status.ids("Gid")
    );
}

#[test]
fn pasta_run_by_root_refuses_ports_only_root_may_bind() {
    if !require(As::Root) {
        return;
    }
    let first: u16 = read(Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start"))
        .trim()
        .parse()
        .unwrap();
    let Some(port) = (1..first).rev().find(|&p| port_is_free(p)) else {
        return skip("no privileged port is free");
    };
    let root = busybox_rootfs();
    let publish = format!("{port}/udp");
    let out = contain(
        As::Root,
        &["-c", "--net", "pasta", "-p", &publish],
        &root,
        &["true"],
    );
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.ends_with(&format!(
            "publishing host port {port}/udp: pasta run by root runs as container root, which may bind host ports from {first} up only (net.ipv4.ip_unprivileged_port_start)"
        )),
        "{line}"
    );
    expect_no_orphaned_pasta();
}

#[test]
fn pasta_run_by_root_refuses_container_root_as_host_root() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs();
    let out = contain(
        As::Root,
        &["-c", "--net", "pasta", "-u", "0:0:1", "-g", "0:0:1"],
        &root,
        &["true"],
    );
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.ends_with("--net pasta as root runs pasta as container root, which -u or -g maps to host root: map it elsewhere"),
        "{line}"
    );
}

#[test]
fn a_published_tcp_port_reaches_a_server_inside() {
    let body = format!("from inside {}", unique_token());
    let root = web_root(&body);
    let (plain, tcp) = (free_port(), free_port());
    let publish = [
        "-p".to_string(),
        format!("{plain}:80"),
        "--publish".to_string(),
        format!("{tcp}:80/tcp"),
    ];
    let options: Vec<&str> = publish.iter().map(String::as_str).collect();
    let script = serving("httpd -f -p 80 -h /www");
    let contain = spawn(pasta_command(&options, &root, &["/bin/sh", "-c", &script]));
    let pasta = pasta_of(contain.pid());

    for port in [plain, tcp] {
        expect_served(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            "/index.html",
            &body,
        );
    }

    contain.signal(Signal::SIGTERM);
    let out = contain.finish();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    expect_pasta_gone(pasta);
    for port in [plain, tcp] {
        let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .err()
            .is_some_and(|e| e.kind() == ErrorKind::ConnectionRefused);
        assert!(
            refused,
            "host port {port} still accepts connections after the end"
        );
    }
    expect_no_orphaned_pasta();
}

/// The host's shared library directories (lib, lib64) as the container needs them to run a
/// host program from a bound /usr: the same symlinks on a merged-/usr host, else directories
/// bound by the returned hook commands.
fn share_host_usr(root: &TempDir) -> String {
    root.mkdir("usr");
    let mut hook = "mount --rbind /usr usr".to_string();
    for dir in ["lib", "lib64"] {
        let host = Path::new("/").join(dir);
        if let Ok(target) = fs::read_link(&host) {
            std::os::unix::fs::symlink(&target, root.join(dir)).unwrap();
            std::os::unix::fs::lchown(root.join(dir), Some(user().uid), Some(user().gid)).unwrap();
        } else if host.is_dir() {
            root.mkdir(dir);
            hook.push_str(&format!(" && mount --rbind /{dir} {dir}"));
        }
    }
    hook
}

#[test]
fn a_published_udp_port_reaches_a_server_inside() {
    // busybox has no UDP server: the host's perl (Essential in Debian) answers inside, from
    // the host's /usr bound into the container.
    let root = busybox_rootfs();
    let hook = share_host_usr(&root);
    let port = free_port();
    let publish = format!("{port}:53/udp");
    let server = "$SIG{TERM} = sub { exit 0 }; \
        socket(S, PF_INET, SOCK_DGRAM, 0) or die \"socket: $!\"; \
        bind(S, pack_sockaddr_in(53, INADDR_ANY)) or die \"bind: $!\"; \
        open(R, '>/tmp/ready') or die \"/tmp/ready: $!\"; close(R); \
        while (my $peer = recv(S, my $data, 512, 0)) { send(S, \"pong $data\", 0, $peer) }";
    // The client is on the host itself: Debian 12's pasta answers it only through the
    // gateway's mapping to the host (see contain's -p).
    let contain = spawn(pasta_command(
        &["-p", &publish, "-i", &hook, "--allow-host-loopback"],
        &root,
        &["/usr/bin/perl", "-MSocket", "-e", server],
    ));
    let pasta = pasta_of(contain.pid());
    let ready = root.join("tmp/ready");
    wait_until("the UDP server inside to bind port 53", || ready.exists());

    // To the host's own address, not 127.0.0.1: Debian 12's pasta forwards datagrams sent to
    // the host's loopback inside but loses the replies.
    let (_, address) = host_addresses()
        .into_iter()
        .next()
        .expect("a global IPv4 address");
    let host_ip: Ipv4Addr = address.split('/').next().unwrap().parse().unwrap();
    let target = SocketAddr::from((host_ip, port));
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let ping = format!("ping {}", unique_token());
    let reply = wait_for_or_timeout(|| {
        socket.send_to(ping.as_bytes(), target).ok()?;
        let mut buf = [0u8; 512];
        let (n, from) = socket.recv_from(&mut buf).ok()?;
        Some((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
    });
    let (answer, from) = reply.unwrap_or_else(|| panic!("no answer from {target}"));
    assert_eq!(answer, format!("pong {ping}"));
    assert_eq!(from, target);

    contain.signal(Signal::SIGTERM);
    let out = contain.finish();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    expect_pasta_gone(pasta);
    expect_no_orphaned_pasta();
}

#[test]
fn inject_sees_the_pasta_interface_the_container_sees() {
    let show = "ip -o -4 addr show scope global";
    let container = BackgroundContainer::boot(
        As::User,
        busybox_rootfs(),
        &["--net", "pasta"],
        &format!("{show} > /tmp/seen; "),
    );
    let pasta = pasta_of(container.supervisor());
    let seen = ipv4_addresses(&read(&container.root.join("tmp/seen")));
    assert!(!seen.is_empty(), "no global IPv4 address inside");

    let cmd = inject_command(
        As::User,
        &[],
        container.supervisor(),
        &["/bin/sh", "-c", show],
    );
    let injected = ipv4_addresses(&expect_success(&output(cmd)));
    assert_eq!(injected, seen);

    container.stop();
    expect_pasta_gone(pasta);
    expect_no_orphaned_pasta();
}

#[test]
fn pasta_ends_when_contain_is_killed() {
    // Root's pasta changes its credentials before exec: its parent-death signal is set after.
    for who in [As::User, As::Root] {
        if require(who) {
            expect_pasta_ends_with_killed_contain(who);
        }
    }
}

#[track_caller]
fn expect_pasta_ends_with_killed_contain(who: As) {
    let root = busybox_rootfs();
    let port = free_port();
    let publish = format!("{port}:80");
    let marker = format!("1{}", unique_token());
    let contain = spawn(contain_command(
        who,
        &["-c", "--net", "pasta", "-p", &publish],
        &root,
        &["sleep", &marker],
    ));
    let pasta = pasta_of(contain.pid());
    wait_for_process("the container's sleep", &["sleep", &marker]);

    contain.signal(Signal::SIGKILL);
    let out = contain.finish();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        describe(&out)
    );
    wait_until("pasta to end with its contain", || {
        !process(pasta).is_some_and(|p| is_pasta(&p) && !matches!(p.state, 'Z' | 'X'))
    });
    wait_until("the container's sleep to end", || {
        processes_running(&["sleep", &marker]).is_empty()
    });
    let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .err()
        .is_some_and(|e| e.kind() == ErrorKind::ConnectionRefused);
    assert!(refused, "host port {port} still accepts connections");
    expect_no_orphaned_pasta();
}

/// Runs contain with `options` and a marked `sleep` as the container's command, asserts the
/// one-line error with status 125 and that nothing is left running, and returns the line.
#[track_caller]
fn expect_refused(options: &[&str]) -> String {
    let root = busybox_rootfs();
    let marker = format!("1{}", unique_token());
    let options = [&["-c"], options].concat();
    let out = contain(As::User, &options, &root, &["sleep", &marker]);
    let line = expect_error(&out, "contain", 125);
    expect_nothing_marked(&marker);
    line
}

/// Nothing of the attempt runs: neither the command nor contain's held child (whose command
/// line is contain's, with the marker in it), nor a pasta.
#[track_caller]
fn expect_nothing_marked(marker: &str) {
    let left = processes_marked(marker);
    assert!(left.is_empty(), "left running: {left:?}");
    expect_no_orphaned_pasta();
}

#[test]
fn an_unknown_network_mode_is_refused() {
    let line = expect_refused(&["--net", "bogus"]);
    assert!(line.contains("'bogus'") && line.contains("--net"), "{line}");
}

#[test]
fn publishing_without_pasta_is_refused() {
    for options in [
        &["-p", "8080"][..],
        &["--net", "private", "-p", "8080"],
        &["--net", "host", "-p", "8080"],
        &["-n", "--publish", "8080"],
    ] {
        let line = expect_refused(options);
        assert!(
            line.contains("8080") && line.contains("--net pasta"),
            "{options:?}: {line}"
        );
    }
}

#[test]
fn malformed_ports_are_refused() {
    for spec in [
        "99999",
        "0",
        "x",
        "80/sctp",
        "80:",
        ":80",
        "1:2:3",
        "80:99999/udp",
    ] {
        let line = expect_refused(&["--net", "pasta", "-p", spec]);
        assert!(line.contains(&format!("'{spec}'")), "-p {spec}: {line}");
    }
}

#[test]
fn a_host_port_published_twice_is_refused() {
    let line = expect_refused(&["--net", "pasta", "-p", "8080:80", "-p", "8080:81"]);
    assert!(line.contains("8080/tcp"), "{line}");
}

#[test]
fn a_host_port_held_by_another_program_is_refused() {
    // Held by the test on 127.0.0.1 only: pasta binds every address and would miss it.
    for (proto, held) in [("tcp", true), ("udp", false)] {
        let port = free_port();
        let _tcp = held.then(|| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap());
        let _udp = (!held).then(|| std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap());
        let spec = format!("{port}:80/{proto}");
        let line = expect_refused(&["--net", "pasta", "-p", &spec]);
        assert!(
            line.contains(&format!("host port {port}/{proto} is in use")),
            "-p {spec}: {line}"
        );
    }
}

#[test]
fn n_with_net_is_refused() {
    for options in [&["-n", "--net", "pasta"][..], &["--net", "pasta", "-n"]] {
        let line = expect_refused(options);
        assert!(
            line.contains("-n") && line.contains("--net"),
            "{options:?}: {line}"
        );
    }
}

#[test]
fn missing_pasta_names_the_debian_package() {
    // A PATH with the tools and shadow's ID map helpers, which contain needs for the default
    // maps, and nothing else: no pasta.
    let helpers = TempDir::new();
    for helper in ["newuidmap", "newgidmap"] {
        let found = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|dir| Path::new(dir).join(helper))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("{helper} is not installed (Debian package uidmap)"));
        std::os::unix::fs::symlink(found, helpers.join(helper)).unwrap();
    }
    let tools = bin("contain").parent().unwrap().to_path_buf();
    let path = format!("{}:{}", tools.display(), helpers.path().display());

    let root = busybox_rootfs();
    let marker = format!("1{}", unique_token());
    let mut cmd = contain_command(
        As::User,
        &["-c", "--net", "pasta"],
        &root,
        &["sleep", &marker],
    );
    cmd.env("PATH", &path);
    let out = output(cmd);
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.contains("pasta") && line.contains("passt"),
        "does not name pasta and its package passt: {line}"
    );
    expect_nothing_marked(&marker);
}

#[test]
fn pastas_own_failure_is_reported() {
    // pasta opens a few hundred sockets at start; with 64 descriptors it fails with its own
    // message ("Too many open files") while contain itself still has enough.
    let root = busybox_rootfs();
    let marker = format!("1{}", unique_token());
    let script = format!(
        "ulimit -n 64 && exec contain -c --net pasta {} sleep {marker}",
        root.path_arg()
    );
    let out = sh(As::User, &script);
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.starts_with("contain: pasta failed: ") && line.contains("Too many open files"),
        "not pasta's own message: {line}"
    );
    expect_nothing_marked(&marker);
}
