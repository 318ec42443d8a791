//! `contain --gui xephyr`: a display of the container's own, shown on the caller's display,
//! with nothing inside able to reach the caller's X server.
//!
//! Headless: the "host display" is an Xvfb the test starts as the test user, in a mount
//! namespace of its own with its socket in a private directory (only its abstract socket is
//! in the host's network namespace), and readiness read from `-displayfd`. A second, open
//! one (`-listen tcp -ac`) is the target that must stay out of reach. The container's root
//! is a skeleton with the host's /usr bound in (X clients are dynamic).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use tests::*;

/// The host display's screen.
const HOST_SCREEN: (u32, u32) = (1280, 1024);

/// An Xvfb standing in for the user's display.
struct HostDisplay {
    server: Child,
    number: u32,
    /// Its socket directory and its cookie file.
    dir: TempDir,
    /// The cookie file, if the display asks for one.
    cookie: Option<String>,
}

impl HostDisplay {
    /// A display as users have it: local connections with a cookie only, no TCP.
    fn closed() -> HostDisplay {
        HostDisplay::start(false)
    }

    /// A display anyone may use, over TCP on every address too (`-listen tcp -ac`).
    fn open() -> HostDisplay {
        HostDisplay::start(true)
    }

    fn start(open: bool) -> HostDisplay {
        let dir = TempDir::new();
        dir.mkdir("sockets");
        let mut access = "-listen tcp -ac";
        let mut cookie = None;
        if !open {
            let file = dir.write("cookie", xauthority_entry(&random_cookie()));
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
            access = "-nolisten tcp -auth /tmp/host/cookie";
            cookie = Some(file.to_str().unwrap().to_string());
        }
        // A private /tmp: the directory moved to /tmp/host, where the server finds its
        // cookie, and its socket lands in `sockets`, bound over its /tmp/.X11-unix; its lock
        // files stay in the tmpfs.
        let script = format!(
            "mount -n --bind {d} /mnt && mount -n -t tmpfs tmpfs /tmp && \
             mkdir /tmp/host /tmp/.X11-unix && mount -n --move /mnt /tmp/host && \
             mount -n --bind /tmp/host/sockets /tmp/.X11-unix && \
             exec Xvfb -displayfd 1 {access} -screen 0 {w}x{h}x24",
            d = dir.path_arg(),
            w = HOST_SCREEN.0,
            h = HOST_SCREEN.1,
        );
        let mut xvfb = sh_command(As::User, &format!("exec unshare -Urm sh -c '{script}'"));
        let mut server = xvfb
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb (install xvfb)");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number = line.trim().parse().unwrap_or_else(|_| {
            let _ = server.kill();
            panic!("Xvfb did not start (it wrote {line:?})")
        });
        HostDisplay {
            server,
            number,
            dir,
            cookie,
        }
    }

    fn display(&self) -> String {
        format!(":{}", self.number)
    }

    /// Sets DISPLAY (and XAUTHORITY) of a command to this display.
    fn apply(&self, cmd: &mut Command) {
        cmd.env("DISPLAY", self.display());
        if let Some(cookie) = &self.cookie {
            cmd.env("XAUTHORITY", cookie);
        }
    }

    /// Runs an X client as the test user on the host, on this display.
    fn client(&self, script: &str) -> Output {
        let mut cmd = sh_command(As::User, script);
        self.apply(&mut cmd);
        output(cmd)
    }

    /// The position and size of the top-level window titled `title`, if there is one.
    fn window(&self, title: &str) -> Option<(i32, i32, u32, u32)> {
        let tree = expect_success(&self.client("xwininfo -root -tree"));
        let quoted = format!("\"{title}\"");
        let line = tree.lines().find(|l| l.contains(&quoted))?;
        // `0x200001 "title": ()  640x480+0+0  +0+0`: size, then absolute position last.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let size = fields.iter().find(|f| f.contains('x') && f.contains('+'))?;
        let (w, rest) = size.split_once('x')?;
        let h = rest.split(['+', '-']).next()?;
        let abs = fields.last()?;
        let mut coords = abs[1..].split(['+', '-']);
        let x = coords.next()?.parse().ok()?;
        let y = coords.next()?.parse().ok()?;
        Some((x, y, w.parse().ok()?, h.parse().ok()?))
    }

    /// The colour of the pixel at (x, y) of the screen, from an xwd dump.
    fn pixel(&self, x: i32, y: i32) -> (u8, u8, u8) {
        let out = self.client("xwd -root -silent");
        assert!(out.status.success(), "xwd: {}", describe(&out));
        xwd_pixel(&out.stdout, x as usize, y as usize)
    }
}

impl Drop for HostDisplay {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.server.id() as i32), Signal::SIGKILL);
        let _ = self.server.wait();
    }
}

fn random_cookie() -> [u8; 16] {
    let bytes = fs::read("/proc/sys/kernel/random/uuid").unwrap();
    let hex: Vec<u8> = bytes.into_iter().filter(u8::is_ascii_hexdigit).collect();
    let mut cookie = [0u8; 16];
    for (i, pair) in hex.chunks(2).take(16).enumerate() {
        cookie[i] = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
    }
    cookie
}

/// An Xauthority file granting `cookie` for any host and display number 0-99 (FamilyWild
/// entries, as `xauth nmerge` would write).
fn xauthority_entry(cookie: &[u8; 16]) -> Vec<u8> {
    let mut file = Vec::new();
    for number in 0..100 {
        let number = number.to_string();
        file.extend_from_slice(&[0xff, 0xff, 0, 0]);
        for field in [number.as_bytes(), b"MIT-MAGIC-COOKIE-1", cookie] {
            file.extend_from_slice(&(field.len() as u16).to_be_bytes());
            file.extend_from_slice(field);
        }
    }
    file
}

/// The colour at (x, y) of an xwd dump of a TrueColor screen (24 or 32 bits per pixel).
fn xwd_pixel(xwd: &[u8], x: usize, y: usize) -> (u8, u8, u8) {
    let field = |i: usize| u32::from_be_bytes(xwd[i * 4..i * 4 + 4].try_into().unwrap());
    let header_size = field(0) as usize;
    let byte_order = field(7);
    let bits_per_pixel = field(11) as usize;
    let bytes_per_line = field(12) as usize;
    let masks = [field(14), field(15), field(16)];
    let ncolors = field(19) as usize;
    assert!(
        matches!(bits_per_pixel, 24 | 32),
        "xwd dump of a TrueColor screen: {bits_per_pixel} bits per pixel"
    );
    let size = bits_per_pixel / 8;
    let start = header_size + ncolors * 12 + y * bytes_per_line + x * size;
    let raw = &xwd[start..start + size];
    let value = raw.iter().enumerate().fold(0u32, |acc, (i, &b)| {
        let shift = if byte_order == 0 { i } else { size - 1 - i };
        acc | (b as u32) << (8 * shift)
    });
    let channel = |mask: u32| ((value & mask) >> mask.trailing_zeros()) as u8;
    (channel(masks[0]), channel(masks[1]), channel(masks[2]))
}

/// A root file system for X clients: the host's /usr (bound in by [`USR_HOOK`]), the
/// top-level links of a merged-/usr system, and the directories contain fills.
fn x_rootfs() -> TempDir {
    let root = TempDir::new();
    x_rootfs_in(&root, Path::new(""));
    root
}

/// Fills `dir` of `temp` (which exists) as [`x_rootfs`] does.
fn x_rootfs_in(temp: &TempDir, dir: &Path) {
    for sub in ["usr", "proc", "sys", "dev", "etc", "tmp"] {
        temp.mkdir(dir.join(sub));
    }
    fs::set_permissions(
        temp.join(dir.join("tmp")),
        fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    for link in ["bin", "sbin", "lib", "lib64"] {
        match fs::read_link(Path::new("/").join(link)) {
            Ok(target) => {
                let at = temp.join(dir.join(link));
                std::os::unix::fs::symlink(target, &at).unwrap();
                if is_root() {
                    std::os::unix::fs::lchown(&at, Some(user().uid), Some(user().gid)).unwrap();
                }
            }
            Err(_) => {
                temp.mkdir(dir.join(link));
            }
        }
    }
    temp.write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
    );
    temp.write(dir.join("etc/group"), "root:x:0:\nuser:x:1000:\n");
}

/// The -i hook binding the host's /usr (and /bin, /lib... where they are directories).
const USR_HOOK: &str =
    "for d in usr bin sbin lib lib64; do [ -L $d ] || mount -n --rbind /$d $d; done";

/// `contain -c -i USR_HOOK OPTIONS... ROOT CMD...` on `display`.
fn gui_command(display: &HostDisplay, options: &[&str], root: &TempDir, cmd: &[&str]) -> Command {
    let options = [&["-c", "-i", USR_HOOK], options].concat();
    let mut command = contain_command(As::User, &options, root, cmd);
    display.apply(&mut command);
    command
}

/// The display servers (Xephyr, xpra) whose command line names `root` (in their window
/// titles).
fn servers_of(root: &TempDir) -> Vec<Process> {
    let title = format!("contain {}", root.path_arg());
    live_processes()
        .into_iter()
        .filter(|p| {
            let arg = |i: usize| p.cmdline.get(i).map_or("", String::as_str);
            arg(0).ends_with("Xephyr") || (arg(1).ends_with("xpra") && arg(2) == "start")
        })
        .filter(|p| p.cmdline.iter().any(|a| a.contains(&title)))
        .collect()
}

/// The private directories contain made for displays, on the host, for supervisor `pid`.
fn private_dirs_of(pid: u32) -> Vec<String> {
    let prefix = format!("contain-gui.{pid}.");
    fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Asserts that nothing of the display of the container in `root`, run by supervisor `pid`,
/// is left: no server, no private directory (its socket and cookie).
#[track_caller]
fn expect_display_gone(root: &TempDir, pid: u32) {
    wait_until("the display server to end", || servers_of(root).is_empty());
    assert_eq!(private_dirs_of(pid), Vec::<String>::new());
}

#[test]
fn the_nested_display_has_the_asked_size_and_wants_its_cookie() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let script = "echo DISPLAY=$DISPLAY XAUTHORITY=$XAUTHORITY; ls -ln /tmp/.X11-unix; \
                  xdpyinfo | grep -E 'dimensions|MIT-SHM'; \
                  XAUTHORITY=/dev/null xdpyinfo >/dev/null 2>&1 && echo NO-COOKIE-ACCEPTED; \
                  echo done";
    let out = output(gui_command(
        &host,
        &["--gui", "xephyr", "--gui-size", "640x480"],
        &root,
        &["/bin/sh", "-c", script],
    ));
    let report = expect_success(&out);
    assert!(
        report.contains("DISPLAY=:0 XAUTHORITY=/tmp/.X11-unix/Xauthority"),
        "{report}"
    );
    assert!(report.contains("dimensions:    640x480 pixels"), "{report}");
    assert!(!report.contains("MIT-SHM"), "{report}");
    assert!(!report.contains("NO-COOKIE-ACCEPTED"), "{report}");
    assert!(report.contains("done"), "{report}");
    // Only the socket and the cookie file (0600, root's) are there.
    let entries: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with('s') || l.starts_with('-'))
        .collect();
    assert_eq!(entries.len(), 2, "{report}");
    assert!(
        entries[0].starts_with("srwx") && entries[0].ends_with(" X0"),
        "{report}"
    );
    assert!(
        entries[1].starts_with("-rw------- 1 0 0 ") && entries[1].ends_with(" Xauthority"),
        "{report}"
    );

    // The whole screen of the host display.
    let out = output(gui_command(
        &host,
        &["--gui", "xephyr", "--gui-size", "full"],
        &root,
        &["/bin/sh", "-c", "xdpyinfo | grep dimensions"],
    ));
    let (w, h) = HOST_SCREEN;
    assert!(
        expect_success(&out).contains(&format!("dimensions:    {w}x{h} pixels")),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_user_of_the_container_gets_the_cookie() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let out = output(gui_command(
        &host,
        &["--gui", "xephyr", "--user", "1000", "--cap-drop", "all"],
        &root,
        &[
            "/bin/sh",
            "-c",
            "id -u; stat -c '%u %a' $XAUTHORITY; xdpyinfo | grep dimensions",
        ],
    ));
    let report = expect_success(&out);
    assert!(report.starts_with("1000\n1000 600\n"), "{report}");
    assert!(
        report.contains("dimensions:    1024x768 pixels"),
        "{report}"
    );
}

/// The ways a client inside could try to reach `display` (a number on the host): its
/// abstract socket and path through DISPLAY, its socket directory on the host, and TCP
/// to every address that leads to the host (`tcp_hosts`). Prints REACHED for each that
/// connects.
fn escape_attempts(display: &HostDisplay, tcp_hosts: &[String]) -> String {
    let n = display.number;
    // All at once: a connection to an address nobody answers hangs until its timeout.
    let mut script = format!(
        "test -e {dir}/sockets/X{n} && echo REACHED path {dir}\n\
         for d in :{n} unix:{n}; do timeout 10 xdpyinfo -display $d >/dev/null 2>&1 && echo REACHED $d; done &\n",
        dir = display.dir.path_arg()
    );
    for host in tcp_hosts {
        script.push_str(&format!(
            "timeout 10 xdpyinfo -display '{host}:{n}' >/dev/null 2>&1 && echo REACHED '{host}:{n}' &\n"
        ));
    }
    script.push_str("wait; echo tried\n");
    script
}

/// Addresses through which a container on pasta's network could reach the host: the host's
/// own (the IPv6 link-local one with its interface), the default gateways (pasta maps them to
/// the host's loopback), and loopback.
fn host_routes() -> Vec<String> {
    let mut hosts = vec!["127.0.0.1".to_string(), "[::1]".to_string()];
    // `2: eth0    inet6 fe80::1/64 scope link ...`, one address a line.
    let out = Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .expect("running ip (install iproute2)");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(interface), Some(address)) = (words.get(1), words.get(3)) else {
            continue;
        };
        let Ok(ip) = address.split('/').next().unwrap_or("").parse::<IpAddr>() else {
            continue;
        };
        match ip {
            _ if ip.is_loopback() => {}
            IpAddr::V4(v4) => hosts.push(v4.to_string()),
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                hosts.push(format!("[{v6}%{interface}]"))
            }
            IpAddr::V6(v6) => hosts.push(format!("[{v6}]")),
        }
    }
    hosts.extend(default_gateways());
    hosts
}

fn default_gateways() -> Vec<String> {
    let mut gateways = Vec::new();
    for family in ["-4", "-6"] {
        let out = Command::new("ip")
            .args([family, "route", "show", "default"])
            .output()
            .expect("running ip (install iproute2)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(at) = words.iter().position(|w| *w == "via") {
                if let Some(Ok(ip)) = words.get(at + 1).map(|w| w.parse::<IpAddr>()) {
                    gateways.push(match ip {
                        IpAddr::V4(v4) => v4.to_string(),
                        IpAddr::V6(v6) => format!("[{v6}]"),
                    });
                }
            }
        }
    }
    gateways
}

/// Copies the closed display's cookie file into the root as /host-cookie.
fn copy_cookie_in(host: &HostDisplay, root: &TempDir) {
    let cookie = fs::read(host.cookie.as_ref().unwrap()).unwrap();
    root.write("host-cookie", cookie);
}

#[test]
fn the_host_displays_are_out_of_reach_on_a_private_network() {
    let host = HostDisplay::closed();
    let target = HostDisplay::open();
    // The open display is reachable over TCP from the host itself: the attempts below would
    // see it if a route led there.
    let seen = target.client(&format!(
        "xdpyinfo -display 127.0.0.1:{} >/dev/null && echo seen",
        target.number
    ));
    assert_eq!(expect_success(&seen), "seen\n");
    // The closed one wants its cookie, which the container gets a copy of below.
    let closed = host.client("xdpyinfo >/dev/null && echo with; XAUTHORITY=/dev/null xdpyinfo >/dev/null 2>&1 || echo without");
    assert_eq!(expect_success(&closed), "with\nwithout\n");

    let root = x_rootfs();
    copy_cookie_in(&host, &root);
    let script = format!(
        "export XAUTHORITY=/host-cookie\n{}{}",
        escape_attempts(&host, &[]),
        escape_attempts(&target, &["127.0.0.1".into(), "[::1]".into()])
    );
    let out = output(gui_command(
        &host,
        &["--gui", "xephyr"],
        &root,
        &["/bin/sh", "-c", &script],
    ));
    let report = expect_success(&out);
    assert!(!report.contains("REACHED"), "{report}");
    assert_eq!(report.matches("tried").count(), 2, "{report}");
}

#[test]
fn the_host_displays_are_out_of_reach_through_pasta() {
    let host = HostDisplay::closed();
    let target = HostDisplay::open();
    let routes = host_routes();
    let root = x_rootfs();
    copy_cookie_in(&host, &root);

    // Without a display of its own, a container on pasta allowed the host's loopback reaches
    // the open display through the gateway: the attempts below can see a way out.
    let out = output(gui_command(
        &host,
        &["--net", "pasta", "--allow-host-loopback"],
        &root,
        &["/bin/sh", "-c", &escape_attempts(&target, &routes)],
    ));
    let report = expect_success(&out);
    assert!(report.contains("REACHED"), "{report}");

    let script = format!(
        "export XAUTHORITY=/host-cookie\n{}{}",
        escape_attempts(&host, &routes),
        escape_attempts(&target, &routes)
    );
    let out = output(gui_command(
        &host,
        &["--net", "pasta", "--gui", "xephyr"],
        &root,
        &[
            "/bin/sh",
            "-c",
            &format!("xdpyinfo >/dev/null && echo nested; {script}"),
        ],
    ));
    let report = expect_success(&out);
    assert!(report.starts_with("nested\n"), "{report}");
    assert!(!report.contains("REACHED"), "{report}");
    assert_eq!(report.matches("tried").count(), 2, "{report}");
}

/// A container with a display (`--gui xephyr` unless `options` say otherwise), in the
/// background, whose init runs `setup`, then creates /tmp/ready and waits (ending with status
/// 0 on SIGTERM).
fn background(host: &HostDisplay, root: &TempDir, options: &[&str], setup: &str) -> Running {
    let script = format!("trap 'exit 0' TERM; {setup} touch /tmp/ready; sleep 1000 & wait");
    let mode: &[&str] = if options.contains(&"--gui") {
        &[]
    } else {
        &["--gui", "xephyr"]
    };
    let options = [mode, options].concat();
    let running = spawn(gui_command(
        host,
        &options,
        root,
        &["/bin/sh", "-c", &script],
    ));
    let ready = root.join("tmp/ready");
    wait_until("the container to be ready", || {
        ready.exists() || !process_alive(running.pid())
    });
    assert!(ready.exists(), "the container did not start");
    running
}

#[test]
fn what_the_container_draws_shows_on_the_host_display() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let container = background(
        &host,
        &root,
        &["--gui-size", "320x200"],
        "xsetroot -solid '#12c834';",
    );
    let title = format!("contain {}", root.path_arg());
    let (x, y, w, h) = wait_for("the nested window on the host display", || {
        host.window(&title)
    });
    assert_eq!((w, h), (320, 200));
    let middle = (x + w as i32 / 2, y + h as i32 / 2);
    wait_until("the container's colour on the host display", || {
        host.pixel(middle.0, middle.1) == (0x12, 0xc8, 0x34)
    });
    // Outside the window, the host's own black screen.
    assert_eq!(host.pixel(x + w as i32 + 10, y + h as i32 + 10), (0, 0, 0));
    container.signal(Signal::SIGTERM);
    assert_eq!(code(&container.finish()), 0);
}

#[test]
fn inject_uses_the_containers_display() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let container = background(&host, &root, &["--gui-size", "300x200"], "");
    let init = children_of(container.pid())
        .into_iter()
        .find(|c| c.cmdline.first().is_some_and(|c| c == "/bin/sh"))
        .expect("contain's init")
        .pid;
    // inject runs with the caller's (the host's) DISPLAY and XAUTHORITY.
    let mut cmd = inject_command(
        As::User,
        &[],
        container.pid(),
        &[
            "/bin/sh",
            "-c",
            "echo $DISPLAY $XAUTHORITY; xdpyinfo | grep dimensions",
        ],
    );
    host.apply(&mut cmd);
    let report = expect_success(&output(cmd));
    assert!(
        report.starts_with(":0 /tmp/.X11-unix/Xauthority\n"),
        "{report}"
    );
    assert!(report.contains("dimensions:    300x200 pixels"), "{report}");
    assert!(process_alive(init));
    container.signal(Signal::SIGTERM);
    assert_eq!(code(&container.finish()), 0);
}

#[test]
fn the_display_ends_with_the_container() {
    let host = HostDisplay::closed();

    // init exits.
    let root = x_rootfs();
    let container = background(&host, &root, &[], "");
    assert_eq!(servers_of(&root).len(), 1);
    let pid = container.pid();
    container.signal(Signal::SIGTERM);
    assert_eq!(code(&container.finish()), 0);
    expect_display_gone(&root, pid);

    // A halt inside.
    let root = x_rootfs();
    let container = background(&host, &root, &[], "");
    assert_eq!(servers_of(&root).len(), 1);
    let pid = container.pid();
    let halt = inject_command(As::User, &[], pid, &["busybox", "poweroff", "-f"]);
    let _ = output(halt);
    assert_eq!(code(&container.finish()), 0);
    expect_display_gone(&root, pid);

    // contain killed with SIGKILL.
    let root = x_rootfs();
    let container = background(&host, &root, &[], "");
    let server = servers_of(&root);
    assert_eq!(server.len(), 1);
    let pid = container.pid();
    container.signal(Signal::SIGKILL);
    let out = container.finish();
    assert_eq!(out.status.code(), None, "{}", describe(&out));
    // The server's command line reads empty while it exits: wait for the process itself.
    wait_until("the display server's process to end", || {
        !process_alive(server[0].pid)
    });
    expect_display_gone(&root, pid);
}

#[test]
fn two_containers_have_a_display_each() {
    let host = HostDisplay::closed();
    let (root_a, root_b) = (x_rootfs(), x_rootfs());
    let a = background(&host, &root_a, &["--gui-size", "200x100"], "");
    let b = background(&host, &root_b, &["--gui-size", "300x150"], "");
    let (server_a, server_b) = (servers_of(&root_a), servers_of(&root_b));
    assert_eq!((server_a.len(), server_b.len()), (1, 1));
    assert_ne!(server_a[0].pid, server_b[0].pid);
    for (container, size) in [(&a, "200x100"), (&b, "300x150")] {
        let cmd = inject_command(
            As::User,
            &[],
            container.pid(),
            &["/bin/sh", "-c", "xdpyinfo | grep dimensions"],
        );
        let report = expect_success(&output(cmd));
        assert!(report.contains(&format!("{size} pixels")), "{report}");
    }
    for (root, size) in [(&root_a, (200, 100)), (&root_b, (300, 150))] {
        let title = format!("contain {}", root.path_arg());
        let (_, _, w, h) = wait_for("the window", || host.window(&title));
        assert_eq!((w, h), size);
    }
    for container in [a, b] {
        container.signal(Signal::SIGTERM);
        assert_eq!(code(&container.finish()), 0);
    }
}

#[test]
fn each_error_is_one_line_and_leaves_nothing() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let check = |cmd: Command, expected: &str| {
        let running = spawn(cmd);
        let pid = running.pid();
        let out = running.finish();
        let line = expect_error(&out, "contain", 125);
        assert!(line.contains(expected), "{line:?} lacks {expected:?}");
        assert!(servers_of(&root).is_empty(), "{line}");
        assert_eq!(private_dirs_of(pid), Vec::<String>::new());
    };

    let mut no_display = gui_command(&host, &["--gui", "xephyr"], &root, &["true"]);
    no_display.env_remove("DISPLAY");
    check(no_display, "DISPLAY is not set");

    let mut no_program = gui_command(&host, &["--gui", "xephyr"], &root, &["true"]);
    no_program.env("PATH", "/nonexistent");
    check(
        no_program,
        "needs Xephyr, which is not installed (Debian package xserver-xephyr)",
    );

    let mut failing = gui_command(&host, &["--gui", "xephyr"], &root, &["true"]);
    failing.env("DISPLAY", ":4711");
    check(failing, "Xephyr failed: Xephyr cannot open host display");

    for net in [&["-n"][..], &["--net", "host"]] {
        let options = [net, &["--gui", "xephyr"]].concat();
        check(
            gui_command(&host, &options, &root, &["true"]),
            "--gui needs a network namespace of the container's own",
        );
    }
    check(
        gui_command(
            &host,
            &["--gui", "xephyr", "--gui-size", "big"],
            &root,
            &["true"],
        ),
        "'big' is not WIDTHxHEIGHT or full",
    );
    check(
        gui_command(&host, &["--gui", "vnc"], &root, &["true"]),
        "invalid value 'vnc'",
    );
    check(
        gui_command(
            &host,
            &["--gui", "xephyr", "--net", "pasta", "--allow-host-loopback"],
            &root,
            &["true"],
        ),
        "--allow-host-loopback does not go with --gui",
    );
}

/// Whether two colours differ by at most a few steps per channel (xpra may compress).
fn close_to(a: (u8, u8, u8), b: (u8, u8, u8)) -> bool {
    let near = |x: u8, y: u8| x.abs_diff(y) <= 12;
    near(a.0, b.0) && near(a.1, b.1) && near(a.2, b.2)
}

/// Every process below `pid` (its children, theirs, ...).
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for child in children_of(parent) {
            found.push(child.pid);
            next.push(child.pid);
        }
    }
    found
}

#[test]
fn xpra_shows_the_containers_windows_on_the_host_display() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let colour = "#c83412";
    let setup = format!(
        "xdpyinfo | grep dimensions >/tmp/inside; \
         XAUTHORITY=/dev/null xdpyinfo >/dev/null 2>&1 && echo NO-COOKIE-ACCEPTED >>/tmp/inside; \
         xlogo -geometry 240x160 -bg '{colour}' -fg '{colour}' & "
    );
    let container = background(
        &host,
        &root,
        &["--gui", "xpra", "--gui-size", "800x600"],
        &setup,
    );
    let inside = read(&root.join("tmp/inside"));
    assert!(inside.contains("dimensions:    800x600 pixels"), "{inside}");
    assert!(!inside.contains("NO-COOKIE-ACCEPTED"), "{inside}");

    // The program's own window, titled after the container, on the host display.
    let title = format!("xlogo (contain {})", root.path_arg());
    let (x, y, w, h) = wait_for("xlogo's window on the host display", || host.window(&title));
    assert_eq!((w, h), (240, 160));
    let middle = (x + w as i32 / 2, y + h as i32 / 2);
    wait_until("the container's colour on the host display", || {
        close_to(host.pixel(middle.0, middle.1), (0xc8, 0x34, 0x12))
    });

    // Server, its Xvfb and the attached client end with contain, even killed.
    let servers = servers_of(&root);
    assert_eq!(servers.len(), 1, "{servers:?}");
    let mut ours = descendants(servers[0].pid);
    ours.push(servers[0].pid);
    assert!(ours.len() >= 3, "xpra, its Xvfb and the client: {ours:?}");
    let pid = container.pid();
    container.signal(Signal::SIGKILL);
    let _ = container.finish();
    wait_until("xpra and its helpers to end", || {
        ours.iter().all(|&p| !process_alive(p))
    });
    assert_eq!(private_dirs_of(pid), Vec::<String>::new());
}

#[test]
fn xpra_missing_is_named_with_its_packages() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let mut cmd = gui_command(&host, &["--gui", "xpra"], &root, &["true"]);
    cmd.env("PATH", "/nonexistent");
    let line = expect_error(&output(cmd), "contain", 125);
    assert!(
        line.ends_with(
            "--gui xpra needs xpra, which is not installed (Debian packages xpra and python3-gi-cairo)"
        ),
        "{line}"
    );
}

#[test]
fn sigkill_of_contain_before_the_socket_was_taken_leaves_no_private_directory() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    // The private directory exists from before the server starts until the container's root
    // has taken the socket: kill contain in between, as soon as it shows.
    let cmd = gui_command(&host, &["--gui", "xephyr"], &root, &["sleep", "60"]);
    let container = spawn(cmd);
    let pid = container.pid();
    wait_for("the private directory", || {
        (!private_dirs_of(pid).is_empty()).then_some(())
    });
    container.signal(Signal::SIGKILL);
    drop(container.finish());
    wait_until("the private directory to go", || {
        private_dirs_of(pid).is_empty()
    });
    wait_until("the display server to end", || servers_of(&root).is_empty());
}

#[test]
fn bind_mounts_work_beside_the_display() {
    let host = HostDisplay::closed();
    let root = x_rootfs();
    let data = TempDir::new();
    data.write("f", "from the host\n");
    let bind = format!("{}:/data", data.path_arg());
    // A tmpfs in /tmp, beside the display's socket directory, must not hide it.
    let script = "cat /data/f; xdpyinfo >/dev/null && echo display-works; \
                  echo x > /data/f 2>/dev/null || echo read-only";
    let out = output(gui_command(
        &host,
        &[
            "--gui",
            "xephyr",
            "--ro-bind",
            &bind,
            "--tmpfs",
            "/tmp/scratch",
        ],
        &root,
        &["/bin/sh", "-c", script],
    ));
    assert_eq!(
        expect_success(&out),
        "from the host\ndisplay-works\nread-only\n"
    );
}

/// A directory name that runs commands wherever a shell reads it, unquoted, in double quotes
/// or in single quotes: each creates the file `$CONTAIN_TEST_MARK.N`.
const SHELL_BAIT: &str = "bait $(touch $CONTAIN_TEST_MARK.1) `touch $CONTAIN_TEST_MARK.2`\n\
                          ;touch $CONTAIN_TEST_MARK.3;\n\"$(touch $CONTAIN_TEST_MARK.4)\"\n\
                          '$(touch $CONTAIN_TEST_MARK.5)' \\ @title@";

#[test]
fn a_directory_named_like_shell_commands_runs_none_of_them() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let host = HostDisplay::closed();
        let temp = TempDir::new();
        // The marks land where the server may write whoever it runs as.
        let marks = temp.mkdir("marks");
        fs::set_permissions(&marks, fs::Permissions::from_mode(0o1777)).unwrap();
        let mark = marks.join("mark");
        let root = temp.mkdir(SHELL_BAIT);
        x_rootfs_in(&temp, Path::new(SHELL_BAIT));
        let root = root.to_str().unwrap().to_string();
        // Root names DIR by a harmless symbolic link to it: contain follows DIR to the bait,
        // which is what the title holds.
        let named = match who {
            As::User => root.clone(),
            As::Root => {
                let link = temp.join("plain-link");
                std::os::unix::fs::symlink(SHELL_BAIT, &link).unwrap();
                link.to_str().unwrap().to_string()
            }
        };

        let script = "trap 'exit 0' TERM; touch /tmp/ready; sleep 1000 & wait";
        let options = [
            "-c",
            "-i",
            USR_HOOK,
            "--gui",
            "xpra",
            "--gui-size",
            "320x200",
        ];
        let mut args: Vec<&str> = options.to_vec();
        args.extend([named.as_str(), "/bin/sh", "-c", script]);
        let mut cmd = command(who, "contain", &args);
        host.apply(&mut cmd);
        cmd.env("CONTAIN_TEST_MARK", &mark);
        let container = spawn(cmd);
        let ready = Path::new(&root).join("tmp/ready");
        wait_until("the container to be ready", || {
            ready.exists() || !process_alive(container.pid())
        });
        // contain waits for the client on the host display before it starts the container:
        // the command that holds the title has run.
        assert!(ready.exists(), "{who:?}: {}", describe(&container.finish()));
        let client = descendants(container.pid())
            .into_iter()
            .filter_map(process)
            .find(|p| p.cmdline.iter().any(|a| a == "attach"))
            .expect("xpra's client on the host display");
        let title = format!("--title=@title@ (contain {root})");
        assert!(
            client.cmdline.contains(&title),
            "{who:?}: {:?} lacks {title:?}",
            client.cmdline
        );
        container.signal(Signal::SIGTERM);
        assert_eq!(code(&container.finish()), 0, "{who:?}");
        let made: Vec<_> = fs::read_dir(&marks)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            made.is_empty(),
            "{who:?}: a shell ran commands from DIR: {made:?}"
        );
    }
}

#[test]
fn the_host_sandbox_gets_a_display_of_its_own_too() {
    // `--tmp-overlay /` covers the host's /tmp, where the display's private directory is
    // made (the test user has no XDG_RUNTIME_DIR): the socket is still bound in, and the
    // directory still removed from the host.
    let host = HostDisplay::closed();
    let mut command = command(
        As::User,
        "contain",
        [
            "-c",
            "--gui",
            "xephyr",
            "--tmp-overlay",
            "/",
            "/bin/sh",
            "-c",
            "xdpyinfo | grep dimensions; ls /tmp/.X11-unix",
        ],
    );
    host.apply(&mut command);
    let container = spawn(command);
    let pid = container.pid();
    let out = container.finish();
    let report = expect_success(&out);
    assert!(
        report.contains("dimensions:    1024x768 pixels"),
        "{report}"
    );
    assert!(report.ends_with("X0\nXauthority\n"), "{report}");
    // Its own directory only: other tests of this process hold displays meanwhile.
    assert_eq!(private_dirs_of(pid), Vec::<String>::new());
}
