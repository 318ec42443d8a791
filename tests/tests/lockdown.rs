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

use std::fs;
use std::process::Output;
use tests::*;

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

/// The busybox root file system with an empty /mnt to mount on.
fn rootfs() -> TempDir {
    let root = busybox_rootfs();
    root.mkdir("mnt");
    root
}

/// `options` after the mode's options.
fn with_mode<'a>(mode: &[&'a str], options: &[&'a str]) -> Vec<&'a str> {
    [mode, options].concat()
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
    /// Root holding `caps`.
    fn root(caps: u64) -> Expected {
        Expected {
            bounding: caps,
            held: caps,
            ambient: 0,
            no_new_privs: false,
        }
    }

    /// A user other than root: nothing held, `bounding` left to gain through exec.
    fn user(bounding: u64) -> Expected {
        Expected {
            held: 0,
            ..Expected::root(bounding)
        }
    }

    /// A user other than root holding `caps` as ambient capabilities, kept across exec.
    fn user_with_ambient(caps: u64) -> Expected {
        Expected {
            ambient: caps,
            ..Expected::root(caps)
        }
    }

    /// The same with NoNewPrivs set.
    fn no_new_privs(self) -> Expected {
        Expected {
            no_new_privs: true,
            ..self
        }
    }

    /// Asserts that `status` shows exactly this, with hexadecimal masks in the message.
    #[track_caller]
    fn check(&self, status: &ProcStatus, what: &str) {
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
fn status_in_container(options: &[&str], root: &TempDir) -> ProcStatus {
    let out = contain(As::User, options, root, &["cat", "/proc/self/status"]);
    ProcStatus::parse(&expect_success(&out))
}

/// Runs the container under `options` in both modes and checks what its command holds.
#[track_caller]
fn expect_container(options: &[&str], want: Expected) -> ProcStatus {
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
    status.expect_ids(0);
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
    // Nothing in the bounding set either: a set-user-ID root program gives nothing back.
    let status = expect_container(&["--user", "1000:1000"], Expected::user(0));
    status.expect_ids(1000);
    assert_eq!(status.field("Groups"), "", "supplementary groups");

    let root = rootfs();
    let out = contain(
        As::User,
        &["-c", "--user", "1000:1000"],
        &root,
        &["sh", "-c", "id -u; id -g; id -G"],
    );
    assert_eq!(expect_success(&out), "1000\n1000\n1000\n");
}

#[test]
fn user_with_cap_add_holds_it_across_exec() {
    let status = expect_container(
        &USER_1000_WITH_NET_BIND_SERVICE,
        Expected::user_with_ambient(NET_BIND_SERVICE),
    );
    // The GID defaults to the UID.
    status.expect_ids(1000);
}

#[test]
fn no_new_privs_is_set() {
    expect_container(
        &["--no-new-privs"],
        Expected::root(all_caps()).no_new_privs(),
    );
}

/// Mounts a tmpfs on /mnt; prints `mounted` and the new mount, or `refused`.
const MOUNT_SCRIPT: &str = "if mount -t tmpfs none /mnt; then echo mounted; \
                            grep -c '^none /mnt tmpfs ' /proc/mounts; else echo refused; fi";

#[test]
fn mount_works_by_default_and_fails_without_sys_admin() {
    let root = rootfs();
    let out = contain(As::User, &["-c"], &root, &["sh", "-c", MOUNT_SCRIPT]);
    assert_eq!(expect_success(&out), "mounted\n1\n", "{}", describe(&out));

    let out = contain(
        As::User,
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
        let out = contain(As::User, &options, &root, &["sh", "-c", script]);
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
        As::User,
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
    let out = contain(As::User, &base, &root, &["sh", "-c", PORT_80_SCRIPT]);
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

/// True if `word` occurs in `line` with no letter, digit or underscore right before or after.
fn names(line: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Runs `start` with a command (its arguments given to `start`) that would create a file
/// /tmp/made<token> in `root` and leave a process marked with the token; asserts that `tool`
/// refused to start it with 125 and one line naming `word`, and that the command never ran.
/// `what` says what was refused, for the messages.
#[track_caller]
fn expect_refused_before_running(
    tool: &str,
    what: &str,
    word: &str,
    root: &TempDir,
    start: impl FnOnce(&[&str]) -> Output,
) -> Output {
    let token = unique_token();
    let made = format!("/tmp/made{token}");
    let script = format!("touch {made}; sleep 9{token} & exit 0");
    let out = start(&["sh", "-c", &script, &token]);
    let line = expect_error(&out, tool, 125);
    assert!(
        names(&line, word),
        "{what}: the message does not name {word:?}: {line}"
    );
    let left = processes_marked(&token);
    assert!(left.is_empty(), "{what}: processes left: {left:?}");
    assert!(!root.join(&made[1..]).exists(), "{what}: the command ran");
    out
}

/// Asserts that contain refuses `options` with 125 and one line naming `word`, before
/// starting anything: the command never ran, and nothing was written to stdout or the root.
#[track_caller]
fn expect_refused(options: &[&str], word: &str) {
    let root = rootfs();
    let what = format!("{options:?}");
    let out = expect_refused_before_running("contain", &what, word, &root, |cmd| {
        contain(As::User, options, &root, cmd)
    });
    assert!(out.stdout.is_empty(), "{what}: {}", describe(&out));
    let created: Vec<_> = fs::read_dir(root.join("tmp")).unwrap().flatten().collect();
    assert!(created.is_empty(), "{what}: files created: {created:?}");
}

/// `--user` values that are not a user (with the word the refusal names).
const BAD_USERS: [(&str, &str); 2] = [("x", "x"), ("1000:y", "y")];

/// `--user` values outside the default map, which holds the user and 65536 subordinate IDs at
/// most (with the word the refusal names).
const UNMAPPED_USERS: [(&str, &str); 2] = [("70000", "70000"), ("1000:70000", "70000")];

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
    for (user, word) in BAD_USERS {
        expect_refused(&["--user", user], word);
    }
}

#[test]
fn unmapped_user_is_refused() {
    for (user, word) in UNMAPPED_USERS {
        expect_refused(&["--user", user], word);
    }
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

/// A locked-down container running in the background as the test user, to inject into.
fn start(options: &[&str]) -> BackgroundContainer {
    BackgroundContainer::boot(As::User, rootfs(), options, "")
}

/// `inject [INJECT_OPTIONS...] SUPERVISOR CMD...` run to the end.
fn inject(target: &BackgroundContainer, inject_options: &[&str], cmd: &[&str]) -> Output {
    output(inject_command(
        As::User,
        inject_options,
        target.supervisor(),
        cmd,
    ))
}

/// Injects a probe with `inject_options` into a container started with `container_options`,
/// and asserts that the probe holds `want` (`what` names the case in the message) and prints
/// `said`: its uid, its gid, and whether it can mount (see [`MOUNT_SCRIPT`]). Returns the
/// probe's status.
#[track_caller]
fn expect_injected(
    container_options: &[&str],
    inject_options: &[&str],
    want: Expected,
    what: &str,
    said: &str,
) -> ProcStatus {
    let target = start(container_options);
    let probe = format!("cat /proc/self/status; echo ---; id -u; id -g; {MOUNT_SCRIPT}");
    let out = inject(&target, inject_options, &["sh", "-c", &probe]);
    let text = expect_success(&out);
    let (status, rest) = text
        .split_once("---\n")
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    let status = ProcStatus::parse(status);
    want.check(&status, what);
    assert_eq!(rest, said, "{}", describe(&out));
    target.stop();
    status
}

#[test]
fn injected_command_holds_what_a_default_container_holds() {
    expect_injected(
        &[],
        &[],
        Expected::root(all_caps()),
        "inject into a default container",
        "0\n0\nmounted\n1\n",
    );
}

#[test]
fn injected_command_is_locked_down_like_the_container() {
    expect_injected(
        &["--cap-drop", "sys_admin", "--no-new-privs"],
        &[],
        Expected::root(all_caps() & !SYS_ADMIN).no_new_privs(),
        "inject into --cap-drop sys_admin --no-new-privs",
        "0\n0\nrefused\n",
    );
}

#[test]
fn injected_root_gets_no_more_than_a_non_root_init() {
    expect_injected(
        &USER_1000_WITH_NET_BIND_SERVICE,
        &[],
        Expected::root(NET_BIND_SERVICE),
        "inject into a uid 1000 init with net_bind_service",
        "0\n0\nrefused\n",
    );
}

#[test]
fn inject_user_runs_as_that_user_without_capabilities() {
    let status = expect_injected(
        &["--cap-drop", "sys_admin", "--no-new-privs"],
        &["--user", "1000"],
        Expected::user(0).no_new_privs(),
        "inject --user 1000",
        "1000\n1000\nrefused\n",
    );
    status.expect_ids(1000);
    assert_eq!(status.field("Groups"), "", "supplementary groups");
}

#[test]
fn inject_user_keeps_the_ambient_capabilities_of_the_containers_user() {
    expect_injected(
        &USER_1000_WITH_NET_BIND_SERVICE,
        &["--user", "1000"],
        Expected::user_with_ambient(NET_BIND_SERVICE),
        "inject --user 1000 into a uid 1000 init with net_bind_service",
        "1000\n1000\nrefused\n",
    );
}

#[test]
fn inject_refuses_a_bad_or_unmapped_user() {
    let target = start(&[]);
    for (user, word) in BAD_USERS.into_iter().chain(UNMAPPED_USERS) {
        let what = format!("--user {user}");
        expect_refused_before_running("inject", &what, word, &target.root, |cmd| {
            inject(&target, &["--user", user], cmd)
        });
    }
    target.stop();
}
