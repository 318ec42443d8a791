//! Integration tests of the lock-down options: `contain --cap-drop/--cap-add/--user/
//! --no-new-privs`, and `inject` (with and without `--user`) into a locked-down container.
//!
//! Everything runs as the unprivileged test user in a busybox container. Each test reads the
//! capability sets and NoNewPrivs that the kernel shows in /proc/self/status inside, compares
//! them with exact masks, and then shows the effect a user would notice: a mount, a chown, a
//! server on port 80.
//!
//! "All capabilities" is what a new user namespace grants: every capability up to the kernel's
//! /proc/sys/kernel/cap_last_cap, which may be more than the host's own bounding set.

use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::fs;
use std::process::Output;
use tests::*;

/// Console emulation (default) and `-c`: the lock-down must not depend on it.
const MODES: [&[&str]; 2] = [&[], &["-c"]];

const CHOWN: u64 = 1 << 0;
const NET_BIND_SERVICE: u64 = 1 << 10;
const SYS_ADMIN: u64 = 1 << 21;

/// The kernel's names of the newest capabilities, by number, for a name the running kernel may
/// not know yet.
const RECENT_CAPS: [(u8, &str); 3] = [(38, "perfmon"), (39, "bpf"), (40, "checkpoint_restore")];

/// The highest capability number the running kernel knows.
fn last_cap() -> u8 {
    let text = read("/proc/sys/kernel/cap_last_cap".as_ref());
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("cap_last_cap {text:?}: {e}"))
}

/// Every capability of the running kernel.
fn all_caps() -> u64 {
    let last = last_cap();
    assert!(last < 63, "cap_last_cap {last}");
    (1u64 << (last + 1)) - 1
}

/// A root directory as a command-line argument.
fn dir(root: &TempDir) -> String {
    root.path()
        .to_str()
        .expect("temporary paths are UTF-8")
        .to_string()
}

/// The busybox root file system with an empty /mnt to mount on.
fn rootfs() -> TempDir {
    let root = busybox_rootfs();
    root.mkdir("mnt");
    root
}

/// `contain OPTIONS... DIR CMD...` run to the end as the test user.
fn contain<S: AsRef<str>>(options: &[S], root: &TempDir, cmd: &[&str]) -> Output {
    let mut args: Vec<String> = options.iter().map(|s| s.as_ref().to_string()).collect();
    args.push(dir(root));
    args.extend(cmd.iter().map(|s| s.to_string()));
    run(As::User, "contain", args)
}

/// `options` after the mode's options.
fn with_mode(mode: &[&str], options: &[&str]) -> Vec<String> {
    mode.iter().chain(options).map(|s| s.to_string()).collect()
}

/// The lines "Key:\tvalue" of a /proc/PID/status, as printed by cat (through a console the
/// lines end in "\r\n").
#[derive(Debug)]
struct Status(HashMap<String, String>);

impl Status {
    fn parse(text: &str) -> Status {
        Status(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    #[track_caller]
    fn field(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in status {self:?}"))
    }

    #[track_caller]
    fn mask(&self, key: &str) -> u64 {
        let text = self.field(key);
        u64::from_str_radix(text, 16).unwrap_or_else(|e| panic!("{key} {text:?}: {e}"))
    }

    /// CapBnd, CapPrm, CapEff, CapAmb and NoNewPrivs, in this order.
    fn lockdown(&self) -> [u64; 5] {
        [
            self.mask("CapBnd"),
            self.mask("CapPrm"),
            self.mask("CapEff"),
            self.mask("CapAmb"),
            self.field("NoNewPrivs")
                .parse()
                .expect("NoNewPrivs is a number"),
        ]
    }

    /// The real, effective, saved and filesystem IDs of a Uid: or Gid: line.
    fn ids(&self, key: &str) -> Vec<u32> {
        self.field(key)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }
}

/// What a command expects of /proc/self/status: the capability sets and NoNewPrivs.
#[derive(Clone, Copy, Debug)]
struct Expected {
    bounding: u64,
    /// Permitted and effective.
    held: u64,
    ambient: u64,
    no_new_privs: bool,
}

impl Expected {
    fn root(caps: u64) -> Expected {
        Expected {
            bounding: caps,
            held: caps,
            ambient: 0,
            no_new_privs: false,
        }
    }

    /// Asserts that `status` shows exactly this, with hexadecimal masks in the message.
    #[track_caller]
    fn check(&self, status: &Status, what: &str) {
        let want = [
            self.bounding,
            self.held,
            self.held,
            self.ambient,
            self.no_new_privs as u64,
        ];
        let got = status.lockdown();
        assert_eq!(
            got.map(|m| format!("{m:016x}")),
            want.map(|m| format!("{m:016x}")),
            "{what}: [CapBnd, CapPrm, CapEff, CapAmb, NoNewPrivs] (all = {:016x})",
            all_caps()
        );
    }
}

/// The status of `cat /proc/self/status` run as the container's command under `options`.
fn status_in_container(options: &[String], root: &TempDir) -> Status {
    let out = contain(options, root, &["cat", "/proc/self/status"]);
    Status::parse(&expect_success(&out))
}

/// Runs the container under `options` in both modes and checks what its command holds.
#[track_caller]
fn expect_container(options: &[&str], want: Expected) -> Status {
    let root = rootfs();
    let mut last = None;
    for mode in MODES {
        let options = with_mode(mode, options);
        let status = status_in_container(&options, &root);
        want.check(&status, &format!("contain {options:?}"));
        last = Some(status);
    }
    last.unwrap()
}

#[test]
fn by_default_the_command_holds_every_capability() {
    // The host's bounding set may lack some; a new user namespace has them all.
    let status = expect_container(&[], Expected::root(all_caps()));
    assert_eq!(status.ids("Uid"), [0; 4]);
    assert_eq!(status.ids("Gid"), [0; 4]);
}

#[test]
fn cap_drop_sys_admin_in_any_spelling() {
    for spelling in ["sys_admin", "CAP_SYS_ADMIN", "Sys_Admin"] {
        expect_container(
            &["--cap-drop", spelling],
            Expected::root(all_caps() & !SYS_ADMIN),
        );
    }
}

#[test]
fn cap_drop_all_leaves_nothing() {
    expect_container(&["--cap-drop", "all"], Expected::root(0));
}

#[test]
fn cap_drop_all_cap_add_chown_leaves_chown() {
    expect_container(
        &["--cap-drop", "all", "--cap-add", "chown"],
        Expected::root(CHOWN),
    );
}

#[test]
fn user_holds_no_capabilities_and_no_supplementary_groups() {
    let want = Expected {
        bounding: all_caps(),
        held: 0,
        ambient: 0,
        no_new_privs: false,
    };
    let status = expect_container(&["--user", "1000:1000"], want);
    assert_eq!(status.ids("Uid"), [1000; 4]);
    assert_eq!(status.ids("Gid"), [1000; 4]);
    assert_eq!(status.field("Groups"), "", "supplementary groups");

    let root = rootfs();
    let out = contain(
        &["-c", "--user", "1000:1000"],
        &root,
        &["sh", "-c", "id -u; id -g; id -G"],
    );
    assert_eq!(expect_success(&out), "1000\n1000\n1000\n");
}

#[test]
fn user_with_cap_add_holds_it_across_exec() {
    let nbs = NET_BIND_SERVICE;
    let status = expect_container(
        &[
            "--user",
            "1000",
            "--cap-drop",
            "all",
            "--cap-add",
            "net_bind_service",
        ],
        Expected {
            bounding: nbs,
            held: nbs,
            ambient: nbs,
            no_new_privs: false,
        },
    );
    assert_eq!(status.ids("Uid"), [1000; 4]);
    assert_eq!(status.ids("Gid"), [1000; 4], "GID defaults to the UID");
}

#[test]
fn no_new_privs_is_set() {
    let want = Expected {
        no_new_privs: true,
        ..Expected::root(all_caps())
    };
    expect_container(&["--no-new-privs"], want);
}

/// Mounts a tmpfs on /mnt; prints `mounted` and the new mount, or `refused`.
const MOUNT_SCRIPT: &str = "if mount -t tmpfs none /mnt; then echo mounted; \
                            grep -c '^none /mnt tmpfs ' /proc/mounts; else echo refused; fi";

#[test]
fn mount_works_by_default_and_fails_without_sys_admin() {
    let root = rootfs();
    let out = contain(&["-c"], &root, &["sh", "-c", MOUNT_SCRIPT]);
    assert_eq!(expect_success(&out), "mounted\n1\n", "{}", describe(&out));

    let out = contain(
        &["-c", "--cap-drop", "sys_admin"],
        &root,
        &["sh", "-c", MOUNT_SCRIPT],
    );
    assert_eq!(expect_success(&out), "refused\n", "{}", describe(&out));
}

#[test]
fn chown_fails_without_capabilities_and_works_with_cap_add_chown() {
    let u = user();
    let Some(host_1000) = u.host_uid(1000).zip(u.host_gid(1000)) else {
        skip("uid and gid 1000 are not mapped (no subordinate IDs)");
        return;
    };
    let own = (u.uid, u.gid);
    let script = "touch /tmp/f; if chown 1000:1000 /tmp/f; then echo chowned; \
                  else echo refused; fi";
    for (options, said, owner_after) in [
        (&["--cap-drop", "all"][..], "refused\n", own),
        (
            &["--cap-drop", "all", "--cap-add", "chown"][..],
            "chowned\n",
            host_1000,
        ),
    ] {
        let root = rootfs();
        let options = with_mode(&["-c"], options);
        let out = contain(&options, &root, &["sh", "-c", script]);
        assert_eq!(
            expect_success(&out),
            said,
            "{options:?}: {}",
            describe(&out)
        );
        assert_eq!(owner(&root.join("tmp/f")), owner_after, "{options:?}");
    }
}

/// The inside hook brings up the loopback interface (uid 1000 with net_bind_service alone
/// could not), so that the servers can be reached.
const LO_UP: &str = "/bin/busybox ip link set lo up";

/// Has nc listen on port 80 and sends it a line; then serves a page with httpd on port 80 and
/// fetches it (httpd last: it stays in the background until the container ends). Prints
/// `nc <status>`, the line nc received, `httpd <status>`, the page, and the uid.
const PORT_80_SCRIPT: &str = "
    nc -l -p 80 > /tmp/received & listener=$!
    until echo ping | nc 127.0.0.1 80 2>/dev/null; do
        kill -0 $listener 2>/dev/null || break; sleep 0.05
    done
    wait $listener; echo nc $?; cat /tmp/received
    mkdir /tmp/www; echo page > /tmp/www/index.html
    httpd -p 80 -h /tmp/www; status=$?; echo httpd $status
    if [ $status = 0 ]; then wget -q -O - http://127.0.0.1:80/; fi
    id -u";

#[test]
fn user_binds_port_80_only_with_cap_add_net_bind_service() {
    let root = rootfs();
    let base = ["-c", "-i", LO_UP, "--user", "1000", "--cap-drop", "all"];
    let out = contain(
        &[&base[..], &["--cap-add", "net_bind_service"]].concat(),
        &root,
        &["sh", "-c", PORT_80_SCRIPT],
    );
    assert_eq!(
        expect_success(&out),
        "nc 0\nping\nhttpd 0\npage\n1000\n",
        "{}",
        describe(&out)
    );

    let root = rootfs();
    let out = contain(&base, &root, &["sh", "-c", PORT_80_SCRIPT]);
    assert_eq!(
        expect_success(&out),
        "nc 1\nhttpd 1\n1000\n",
        "{}",
        describe(&out)
    );
    let errors = stderr(&out);
    assert_eq!(
        errors.matches("bind: Permission denied").count(),
        2,
        "{errors}"
    );
}

/// The test user's live processes whose command line mentions `token`.
fn processes_marked(token: &str) -> Vec<Process> {
    test_user_processes()
        .into_iter()
        .filter(|p| p.cmdline.iter().any(|a| a.contains(token)))
        .collect()
}

/// True if `word` occurs in `line` with no letter, digit or underscore right before or after.
fn names(line: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Asserts that contain refuses `options` with 125 and one line naming `word`, before
/// starting anything: the command (which would create a file and leave a process marked
/// with a token) never ran.
#[track_caller]
fn expect_refused(options: &[&str], word: &str) {
    let root = rootfs();
    let token = unique_token();
    let made = format!("/tmp/made{token}");
    let script = format!("touch {made}; sleep 9{token} & exit 0");
    let out = contain(options, &root, &["sh", "-c", &script, &token]);
    let line = expect_error(&out, "contain", 125);
    assert!(
        names(&line, word),
        "{options:?}: the message does not name {word:?}: {line}"
    );
    assert!(out.stdout.is_empty(), "{options:?}: {}", describe(&out));
    let left = processes_marked(&token);
    assert!(left.is_empty(), "{options:?}: processes left: {left:?}");
    let created: Vec<_> = fs::read_dir(root.join("tmp")).unwrap().flatten().collect();
    assert!(
        created.is_empty(),
        "{options:?}: files created: {created:?}"
    );
    assert!(!root.join(&made[1..]).exists());
}

#[test]
fn unknown_capability_is_refused() {
    expect_refused(&["--cap-drop", "foo"], "foo");
    expect_refused(&["--cap-add", "foo"], "foo");
    expect_refused(&["--cap-drop", "sys_admin,foo"], "foo");
}

#[test]
fn empty_capability_list_is_refused() {
    expect_refused(&["--cap-drop", ""], "--cap-drop");
    expect_refused(&["--cap-add", ""], "--cap-add");
}

#[test]
fn empty_capability_name_is_refused() {
    expect_refused(&["--cap-add", "chown,"], "chown,");
    expect_refused(&["--cap-drop", ",chown"], ",chown");
}

#[test]
fn bad_user_is_refused() {
    expect_refused(&["--user", "x"], "x");
    expect_refused(&["--user", "1000:y"], "y");
}

#[test]
fn unmapped_user_is_refused() {
    // The default map holds the user and 65536 subordinate IDs at most: 70000 is not in it.
    expect_refused(&["--user", "70000"], "70000");
    expect_refused(&["--user", "1000:70000"], "70000");
}

#[test]
fn capability_unknown_to_the_kernel_cannot_be_added() {
    let last = last_cap();
    let Some((_, name)) = RECENT_CAPS.iter().find(|(n, _)| *n == last + 1) else {
        skip(&format!(
            "the kernel knows every capability with a name (cap_last_cap {last})"
        ));
        return;
    };
    expect_refused(&["--cap-add", name], name);
}

/// A locked-down container running in the background, to inject into: init is a shell that
/// ends on SIGTERM and meanwhile waits for a `sleep 1<token>`.
struct Target {
    contain: Running,
    root: TempDir,
}

impl Target {
    fn start(options: &[&str]) -> Target {
        let root = rootfs();
        let token = unique_token();
        let script = format!("trap 'exit 0' TERM; sleep 1{token} & touch /tmp/ready; wait");
        let mut args = vec!["-c".to_string()];
        args.extend(options.iter().map(|s| s.to_string()));
        args.extend([dir(&root), "/bin/sh".into(), "-c".into(), script]);
        let contain = spawn(command(As::User, "contain", args));
        let ready = root.join("tmp/ready");
        wait_until("the container to be ready", || ready.exists());
        Target { contain, root }
    }

    /// `inject [INJECT_OPTIONS...] SUPERVISOR CMD...` run to the end.
    fn inject(&self, inject_options: &[&str], cmd: &[&str]) -> Output {
        let mut args: Vec<String> = inject_options.iter().map(|s| s.to_string()).collect();
        args.push(self.contain.pid().to_string());
        args.extend(cmd.iter().map(|s| s.to_string()));
        run(As::User, "inject", args)
    }

    fn stop(self) {
        self.contain.signal(Signal::SIGTERM);
        let out = self.contain.finish();
        assert_eq!(code(&out), 0, "{}", describe(&out));
    }
}

/// Prints the injected command's status, then its uid, then whether it can mount.
fn inject_probe() -> String {
    format!("cat /proc/self/status; echo ---; id -u; id -g; {MOUNT_SCRIPT}")
}

/// Splits the probe's output into the status and the rest.
fn split_probe(out: &Output) -> (Status, String) {
    let text = expect_success(out);
    let (status, rest) = text
        .split_once("---\n")
        .unwrap_or_else(|| panic!("{}", describe(out)));
    (Status::parse(status), rest.to_string())
}

#[test]
fn injected_command_holds_what_a_default_container_holds() {
    let target = Target::start(&[]);
    let out = target.inject(&[], &["sh", "-c", &inject_probe()]);
    let (status, rest) = split_probe(&out);
    Expected::root(all_caps()).check(&status, "inject into a default container");
    assert_eq!(rest, "0\n0\nmounted\n1\n");
    target.stop();
}

#[test]
fn injected_command_is_locked_down_like_the_container() {
    let target = Target::start(&["--cap-drop", "sys_admin", "--no-new-privs"]);
    let out = target.inject(&[], &["sh", "-c", &inject_probe()]);
    let (status, rest) = split_probe(&out);
    let want = Expected {
        no_new_privs: true,
        ..Expected::root(all_caps() & !SYS_ADMIN)
    };
    want.check(&status, "inject into --cap-drop sys_admin --no-new-privs");
    assert_eq!(rest, "0\n0\nrefused\n", "{}", describe(&out));
    target.stop();
}

#[test]
fn injected_root_gets_no_more_than_a_non_root_init() {
    let nbs = NET_BIND_SERVICE;
    let target = Target::start(&[
        "--user",
        "1000",
        "--cap-drop",
        "all",
        "--cap-add",
        "net_bind_service",
    ]);
    let out = target.inject(&[], &["sh", "-c", &inject_probe()]);
    let (status, rest) = split_probe(&out);
    Expected::root(nbs).check(&status, "inject into a uid 1000 init with net_bind_service");
    assert_eq!(rest, "0\n0\nrefused\n", "{}", describe(&out));
    target.stop();
}

#[test]
fn inject_user_runs_as_that_user_without_capabilities() {
    let target = Target::start(&["--cap-drop", "sys_admin", "--no-new-privs"]);
    let out = target.inject(&["--user", "1000"], &["sh", "-c", &inject_probe()]);
    let (status, rest) = split_probe(&out);
    let want = Expected {
        bounding: all_caps() & !SYS_ADMIN,
        held: 0,
        ambient: 0,
        no_new_privs: true,
    };
    want.check(&status, "inject --user 1000");
    assert_eq!(status.ids("Uid"), [1000; 4]);
    assert_eq!(status.ids("Gid"), [1000; 4]);
    assert_eq!(status.field("Groups"), "", "supplementary groups");
    assert_eq!(rest, "1000\n1000\nrefused\n", "{}", describe(&out));
    target.stop();
}

#[test]
fn inject_user_keeps_the_ambient_capabilities_of_the_containers_user() {
    let nbs = NET_BIND_SERVICE;
    let target = Target::start(&[
        "--user",
        "1000",
        "--cap-drop",
        "all",
        "--cap-add",
        "net_bind_service",
    ]);
    let out = target.inject(&["--user", "1000"], &["sh", "-c", &inject_probe()]);
    let (status, rest) = split_probe(&out);
    let want = Expected {
        bounding: nbs,
        held: nbs,
        ambient: nbs,
        no_new_privs: false,
    };
    want.check(
        &status,
        "inject --user 1000 into a uid 1000 init with net_bind_service",
    );
    assert_eq!(rest, "1000\n1000\nrefused\n", "{}", describe(&out));
    target.stop();
}

#[test]
fn inject_refuses_a_bad_or_unmapped_user() {
    let target = Target::start(&[]);
    for (user, word) in [
        ("x", "x"),
        ("1000:y", "y"),
        ("70000", "70000"),
        ("1000:70000", "70000"),
    ] {
        let token = unique_token();
        let made = format!("/tmp/made{token}");
        let script = format!("touch {made}; sleep 9{token} & exit 0");
        let out = target.inject(&["--user", user], &["sh", "-c", &script, &token]);
        let line = expect_error(&out, "inject", 125);
        assert!(names(&line, word), "--user {user}: {line}");
        let left = processes_marked(&token);
        assert!(left.is_empty(), "--user {user}: processes left: {left:?}");
        assert!(
            !target.root.join(&made[1..]).exists(),
            "--user {user}: the command ran"
        );
    }
    target.stop();
}
