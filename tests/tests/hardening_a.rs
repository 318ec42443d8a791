//! Hardening (issue 15, items 1, 2, 3 and 7): contain run by real root, the tools nested in a
//! user namespace, stopping a container whose init ignores signals, and signals that come
//! while a container is starting.

use nix::sys::signal::Signal;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{ChildStdin, Output};
use std::time::Duration;
use tests::*;

/// How long a container that is told to stop may take in these tests: far more than the
/// grace periods they give (1 s, or the default 10 s), far less than what it would run else.
const STOPS_WITHIN: Duration = Duration::from_secs(40);

#[track_caller]
fn expect_nothing_left(token: &str) {
    let left: Vec<Process> = live_processes()
        .into_iter()
        .filter(|p| p.cmdline.iter().any(|a| a.contains(token)))
        .collect();
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// Waits until contain's child (the container's init) runs `program`.
#[track_caller]
fn wait_for_init(contain_pid: u32, program: &str) {
    wait_until(&format!("contain to start {program}"), || {
        children_of(contain_pid)
            .iter()
            .any(|p| p.cmdline.first().map(String::as_str) == Some(program))
    });
}

// ---- 1. Running as root -------------------------------------------------------------------

/// Under real root, container root is a host ID of root's default block, which the pty contain
/// opened (host root's) did not belong to: /dev/console showed as nobody's and nobody inside
/// could open it.
#[test]
fn as_root_the_console_belongs_to_container_root() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs();
    let script = "stat -c '%u %g' /dev/console; echo through the console >/dev/console";
    let out = contain(As::Root, &[], &root, &["sh", "-c", script]);
    assert_eq!(expect_success(&out), "0 0\nthrough the console\n");
}

/// The console case of contain.rs, as root: a terminal of the host's size, restored after.
#[test]
fn as_root_the_console_is_a_terminal_of_the_hosts_size() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs();
    let inside = "stty size; tty; echo typed >/dev/console";
    let out = contain_on_terminal_of_size(As::Root, 30, 90, &root, inside);
    assert_eq!(
        expect_success(&out),
        "30 90\r\n/dev/console\r\ntyped\r\nstatus=0\r\nterminal restored\r\n"
    );
}

// ---- 2. Nested use ------------------------------------------------------------------------

/// `unshare -Ur` maps only the caller, as 0: pseudo and contain map that one ID by default.
#[test]
fn pseudo_and_contain_in_unshare_ur_map_the_ids_of_the_namespace() {
    let out = sh(
        As::User,
        "unshare -Ur pseudo sh -c 'id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map'",
    );
    let text = expect_success(&out);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words, ["0", "0", "0", "0", "1", "0", "0", "1"], "{text}");

    let root = busybox_rootfs();
    let out = sh(
        As::User,
        &format!(
            "unshare -Ur contain {} sh -c 'id -u; stat -c \"%u %g\" /dev/console; \
             echo console >/dev/console'",
            root.path_arg()
        ),
    );
    assert_eq!(expect_success(&out), "0\n0 0\nconsole\n");
}

/// A map that names an ID the namespace does not have is refused with what to map instead.
#[test]
fn a_nested_map_of_missing_ids_is_refused_naming_the_ids_there_are() {
    let out = sh(As::User, "unshare -Ur pseudo -u 0:0:2 id");
    let line = expect_error(&out, "pseudo", 125);
    assert_eq!(
        line,
        "pseudo: uid map 0:0:2: uid 1 does not exist in this user namespace, which has only \
         uids 0: map only those (-u MAP)"
    );
}

/// Inside pseudo, the IDs are the user's (0) and the subordinate range (1..): a range across
/// both is cut in two for the kernel, and contain's default maps each as itself.
#[test]
fn pseudo_and_contain_inside_pseudo() {
    let Some((subuid, _)) = subordinate_ids(8) else {
        return;
    };
    let out = sh(
        As::User,
        "pseudo pseudo -u 0:0:8 -g 0:0:8 sh -c 'id -u; cat /proc/self/uid_map /proc/self/gid_map'",
    );
    let text = expect_success(&out);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0", "0", "1", "1", "1", "7", "0", "0", "1", "1", "1", "7"],
        "{text}"
    );

    let root = busybox_rootfs();
    let out = sh(
        As::User,
        &format!(
            "pseudo contain {} sh -c 'id -u; cat /proc/self/uid_map; echo console >/dev/console'",
            root.path_arg()
        ),
    );
    let text = expect_success(&out);
    let words: Vec<&str> = text.split_whitespace().collect();
    let count = subuid.count.min(u32::MAX - 2).to_string();
    assert_eq!(
        words,
        ["0", "0", "0", "1", "1", "1", &count, "console"],
        "{text}"
    );
}

/// A busybox root whose -i hook binds the host's /usr (and its lib links), the directory of
/// the tools at /tools and `inner`, a second busybox root, at /inner: the tools run inside.
fn nesting_root() -> (TempDir, TempDir, String) {
    let outer = busybox_rootfs();
    let inner = busybox_rootfs();
    let mut binds = vec![("/usr".to_string(), "usr".to_string())];
    for lib in ["lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(lib);
        match fs::read_link(&host) {
            Ok(target) => std::os::unix::fs::symlink(target, outer.join(lib)).unwrap(),
            Err(_) if host.is_dir() => binds.push((host.display().to_string(), lib.into())),
            Err(_) => {}
        }
    }
    let tools = bin("contain").parent().unwrap().display().to_string();
    binds.push((tools, "tools".into()));
    binds.push((inner.path_arg(), "inner".into()));
    let hook: Vec<String> = binds
        .iter()
        .map(|(from, to)| format!("mkdir -p {to} && mount --bind {from} {to}"))
        .collect();
    for (_, to) in &binds {
        fs::create_dir_all(outer.join(to)).unwrap();
    }
    chown_for_user(&outer);
    (outer, inner, hook.join(" && "))
}

/// Gives the directories made after busybox_rootfs to the test user, as the rest is.
fn chown_for_user(root: &TempDir) {
    if is_root() {
        for entry in fs::read_dir(root.path()).unwrap().flatten() {
            let _ = std::os::unix::fs::lchown(entry.path(), Some(user().uid), Some(user().gid));
        }
    }
}

#[test]
fn pseudo_and_contain_inside_contain() {
    let Some(_) = subordinate_ids(8) else {
        return;
    };
    let (outer, _inner, hook) = nesting_root();
    let script = "/tools/pseudo id -u; /tools/pseudo -u 0:0:8 -g 0:0:8 cat /proc/self/uid_map; \
                  /tools/contain /inner sh -c 'id -u; stat -c \"%u %g\" /dev/console; \
                  echo console >/dev/console'";
    for options in MODES {
        let options = [options, &["-i", &hook]].concat();
        let out = contain(As::User, &options, &outer, &["sh", "-c", script]);
        let text = expect_success(&out);
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            words,
            ["0", "0", "0", "1", "1", "1", "7", "0", "0", "0", "console"],
            "{}: {text}",
            mode(&options)
        );
    }
}

/// Root of a container that dropped CAP_SETUID and CAP_SETGID can map only itself: that is
/// its default, and a wider map is refused with what to give instead.
#[test]
fn nested_root_without_the_capability_maps_itself_and_says_so() {
    let (outer, _inner, hook) = nesting_root();
    let script = "/tools/pseudo cat /proc/self/uid_map /proc/self/gid_map; \
                  /tools/pseudo -u 0:0:2 id";
    let options = ["-c", "--cap-drop", "setuid,setgid", "-i", &hook];
    let out = contain(As::User, &options, &outer, &["sh", "-c", script]);
    assert_eq!(code(&out), 125, "{}", describe(&out));
    let words: Vec<String> = stdout(&out)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(words, ["0", "0", "1", "0", "0", "1"], "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "pseudo: uid map 0:0:2 needs CAP_SETUID in this user namespace, which this process \
         lacks (dropped with --cap-drop?): map only your own uid: -u 0:0:1\n"
    );
}

// ---- 3. Stopping --------------------------------------------------------------------------

/// A sleep as PID 1 has no handler: every stopping signal starts the grace period, after
/// which init is killed and contain exits 128+N for the signal it got.
#[test]
fn a_stopping_signal_kills_an_init_that_ignores_it_after_the_stop_timeout() {
    let root = busybox_rootfs();
    for options in MODES {
        for sig in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGPWR,
        ] {
            let token = unique_token();
            let seconds = format!("9{token}");
            let options = [options, &["--stop-timeout", "1"]].concat();
            let running = spawn(contain_command(
                As::User,
                &options,
                &root,
                &["sleep", &seconds],
            ));
            wait_for_init(running.pid(), "sleep");
            running.signal(sig);
            let out = running.finish_within(STOPS_WITHIN);
            assert_eq!(
                code(&out),
                128 + sig as i32,
                "{} {sig}: {}",
                mode(&options),
                describe(&out)
            );
            expect_nothing_left(&token);
        }
    }
}

/// `timeout 2 contain DIR sleep ...` ends within 2 s and the default 10 s of grace.
#[test]
fn timeout_ends_a_container_within_the_default_grace_period() {
    let root = busybox_rootfs();
    let token = unique_token();
    let out = spawn(sh_command(
        As::User,
        &format!("timeout 2 contain {} sleep 9{token}", root.path_arg()),
    ))
    .finish_within(STOPS_WITHIN);
    assert_eq!(code(&out), 124, "{}", describe(&out));
    expect_nothing_left(&token);
}

/// A USR1 is passed on and starts no grace period: the container outlives it.
#[test]
fn usr1_is_passed_on_without_ending_the_container() {
    let root = busybox_rootfs();
    let token = unique_token();
    let script = format!(
        "trap 'touch /tmp/usr1' USR1; trap 'exit 4' TERM; touch /tmp/ready; \
         while [ ! -e /tmp/usr1 ]; do sleep 9{token} & wait; done; \
         sleep 9{token} & wait"
    );
    let running = spawn(contain_command(
        As::User,
        &["--stop-timeout", "0"],
        &root,
        &["sh", "-c", &script],
    ));
    wait_until("the container to be ready", || {
        root.join("tmp/ready").exists()
    });
    running.signal(Signal::SIGUSR1);
    wait_until("init to get USR1", || root.join("tmp/usr1").exists());
    assert!(
        process_alive(running.pid()),
        "contain ended after SIGUSR1 with --stop-timeout 0"
    );
    running.signal(Signal::SIGTERM);
    let out = running.finish_within(STOPS_WITHIN);
    // With no grace at all, TERM kills init at once: the trap may not have run.
    assert!(matches!(code(&out), 4 | 143), "{}", describe(&out));
    expect_nothing_left(&token);
}

/// ^] three times on the console kills the container, whatever runs in it.
#[test]
fn escape_three_times_kills_the_container() {
    let root = busybox_rootfs();
    let token = unique_token();
    let script = format!("trap '' INT TERM HUP; touch /tmp/ready; sleep 9{token}; exit 3");
    let (running, mut stdin) = contain_on_terminal(&[], &root, &script);
    // Raw mode is on once init runs; the keys come in one read, as when typed fast.
    type_keys(&mut stdin, b"\x1d\x1d\x1d");
    let out = running.finish_within(STOPS_WITHIN);
    drop(stdin);
    assert_eq!(code(&out), 137, "{}", describe(&out));
    expect_nothing_left(&token);
}

/// With -c, ^C on the terminal reaches init directly too: an init that handles it (an
/// interactive shell) is not stopped for it, unlike one that is sent SIGINT with kill.
#[test]
fn a_terminal_interrupt_that_init_handles_starts_no_grace_period() {
    let root = busybox_rootfs();
    let token = unique_token();
    let script = format!(
        "trap 'touch /tmp/caught' INT; touch /tmp/ready; \
         while [ ! -e /tmp/done ]; do sleep 0.1 & wait $!; done; exit 5 # {token}"
    );
    let (running, mut stdin) = contain_on_terminal(&["-c", "--stop-timeout", "1"], &root, &script);
    type_keys(&mut stdin, b"\x03");
    wait_until("init to catch ^C", || root.join("tmp/caught").exists());
    // Three times the grace period: a container stopped for the ^C would be gone by now.
    std::thread::sleep(Duration::from_secs(3));
    fs::write(root.join("tmp/done"), "").unwrap();
    let out = running.finish_within(STOPS_WITHIN);
    drop(stdin);
    assert_eq!(code(&out), 5, "{}", describe(&out));
    expect_nothing_left(&token);
}

#[test]
fn a_bad_stop_timeout_is_refused() {
    let root = busybox_rootfs();
    let out = contain(As::User, &["--stop-timeout", "soon"], &root, &["true"]);
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.contains("invalid value 'soon' for '--stop-timeout <SECONDS>'"),
        "{line}"
    );
}

/// Starts `contain OPTIONS... ROOT sh -c SCRIPT` as the test user on a terminal of its own
/// (see [`spawn_on_terminal`]) and waits until SCRIPT has made /tmp/ready; returns contain and
/// the terminal's keyboard.
fn contain_on_terminal(options: &[&str], root: &TempDir, script: &str) -> (Running, ChildStdin) {
    let command = format!(
        "exec contain {} {} sh -c {}",
        options.join(" "),
        root.path_arg(),
        shell_quote(script)
    );
    let started = spawn_on_terminal(As::User, &command);
    wait_until("the container to be ready", || {
        root.join("tmp/ready").exists()
    });
    started
}

/// Types `keys` on the terminal whose keyboard is `keyboard`, at once.
fn type_keys(keyboard: &mut ChildStdin, keys: &[u8]) {
    keyboard.write_all(keys).unwrap();
    keyboard.flush().unwrap();
}

// ---- 7. Signals during the start ----------------------------------------------------------

/// Runs `contain -o HOOK ... sh -c SCRIPT` where the hook says it started and then sleeps
/// (marked with `token`), sends `sig` once the hook runs, and returns contain's output.
fn signal_during_outside_hook(options: &[&str], sig: Signal, token: &str) -> Output {
    let root = busybox_rootfs();
    let files = TempDir::new();
    let started = files.join("started");
    let hook = format!("touch {}; sleep 9{token}", started.display());
    let options = [options, &["-o", &hook]].concat();
    let running = spawn(contain_command(
        As::User,
        &options,
        &root,
        &["sh", "-c", "touch /tmp/ran; echo ran"],
    ));
    wait_until("the -o hook to start", || started.exists());
    running.signal(sig);
    let out = running.finish_within(STOPS_WITHIN);
    assert!(
        !root.join("tmp/ran").exists(),
        "the command ran after {sig}"
    );
    out
}

#[test]
fn a_signal_during_the_outside_hook_ends_the_start_and_the_hook() {
    for options in MODES {
        for sig in [Signal::SIGTERM, Signal::SIGINT] {
            let token = unique_token();
            let out = signal_during_outside_hook(options, sig, &token);
            assert_eq!(
                code(&out),
                128 + sig as i32,
                "{} {sig}: {}",
                mode(options),
                describe(&out)
            );
            assert!(out.stdout.is_empty(), "{}", describe(&out));
            expect_nothing_left(&token);
        }
    }
}

/// A signal passed on while init still runs contain's setup (here the -i hook) is held, and
/// ends the container before the command runs, instead of being lost on a PID 1.
#[test]
fn a_signal_during_the_inside_hook_ends_the_container_before_the_command() {
    let root = busybox_rootfs();
    let files = TempDir::new();
    for options in MODES {
        let started = files.join(format!("started{}", mode(options)));
        // The hook runs as container root, which is the test user: it may write there.
        let hook = format!("touch {}; sleep 3", started.display());
        let options = [options, &["-i", &hook]].concat();
        let running = spawn(contain_command(
            As::User,
            &options,
            &root,
            &["sh", "-c", "trap 'exit 9' TERM; echo ran"],
        ));
        wait_until("the -i hook to start", || started.exists());
        running.signal(Signal::SIGTERM);
        let out = running.finish_within(STOPS_WITHIN);
        assert_eq!(code(&out), 143, "{}: {}", mode(&options), describe(&out));
        assert!(!stdout(&out).contains("ran"), "{}", describe(&out));
    }
}

/// What a shell prints and how it ends when it gets INT, QUIT or PWR: it ends its sleep too,
/// and waits for it, so that a sleep still found afterwards is one the tool left running, not
/// one still on its way out of the shell's own kill.
const TRAPS: &str = "trap 'echo got INT; kill $!; wait $!; exit 7' INT; \
                     trap 'echo got QUIT; kill $!; wait $!; exit 7' QUIT; \
                     trap 'echo got PWR; kill $!; wait $!; exit 7' PWR";

#[test]
fn inject_passes_on_sigint_sigquit_and_sigpwr_sent_with_kill() {
    let target = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    for (sig, name) in [
        (Signal::SIGINT, "INT"),
        (Signal::SIGQUIT, "QUIT"),
        (Signal::SIGPWR, "PWR"),
    ] {
        let ready = format!("/tmp/injected-{name}");
        let script = format!(
            "{TRAPS}; touch {ready}; sleep 9{} >/dev/null 2>&1 & wait",
            target.token
        );
        let cmd = inject_command(As::User, &[], target.supervisor(), &["sh", "-c", &script]);
        let running = spawn(cmd);
        let marker = target.root.join(ready.trim_start_matches('/'));
        wait_until("the injected shell to be ready", || marker.exists());
        running.signal(sig);
        let out = running.finish_within(STOPS_WITHIN);
        assert_eq!(code(&out), 7, "{name}: {}", describe(&out));
        assert_eq!(stdout(&out), format!("got {name}\n"));
    }
    target.stop();
}

/// The signals a tool was started with ignored (`tool &` in a script ignores INT and QUIT,
/// `nohup` HUP): the tool passes them on, so the command must be able to act on them. Each
/// command starts with no signal ignored, and a shell under pseudo traps INT sent with kill.
#[test]
fn a_command_of_a_tool_started_with_signals_ignored_starts_with_none_ignored() {
    let ignoring = |tool_and_args: &str| {
        sh_command(
            As::User,
            &format!(
                "trap '' INT QUIT HUP PIPE; grep SigIgn /proc/self/status; exec {tool_and_args}"
            ),
        )
    };
    let target = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    let root = busybox_rootfs();
    let read_ignored = "grep SigIgn /proc/self/status";
    for (what, line) in [
        ("pseudo", format!("pseudo {read_ignored}")),
        (
            "contain",
            format!("contain -c {} {read_ignored}", root.path_arg()),
        ),
        (
            "inject",
            format!("inject {} {read_ignored}", target.supervisor()),
        ),
    ] {
        let out = output(ignoring(&line));
        let ignored: Vec<u64> = expect_success(&out)
            .lines()
            .filter_map(|l| u64::from_str_radix(l.strip_prefix("SigIgn:\t")?, 16).ok())
            .collect();
        // Signals 1 to 31 (the C library keeps 32 and 33 to itself: they are left as found).
        let standard = |mask: u64| mask & 0x7fff_ffff;
        assert!(
            ignored.len() == 2 && standard(ignored[0]) == 0x1007 && standard(ignored[1]) == 0,
            "{what}: {}",
            describe(&out)
        );
    }
    target.stop();

    let files = TempDir::new();
    let token = unique_token();
    let ready = files.join(format!("ready{token}"));
    let script = format!(
        "{TRAPS}; touch {}; sleep 9{token} >/dev/null 2>&1 & wait",
        ready.display()
    );
    let script_file = files.join("script");
    fs::write(&script_file, script).unwrap();
    let running = spawn(ignoring(&format!("pseudo sh {}", script_file.display())));
    wait_until("pseudo's shell to be ready", || ready.exists());
    running.signal(Signal::SIGINT);
    let out = running.finish_within(STOPS_WITHIN);
    assert_eq!(code(&out), 7, "{}", describe(&out));
    assert!(stdout(&out).ends_with("got INT\n"), "{}", describe(&out));
    expect_nothing_left(&token);
}

#[test]
fn pseudo_passes_on_sigint_sigquit_and_sigpwr_sent_with_kill() {
    let files = TempDir::new();
    for (sig, name) in [
        (Signal::SIGINT, "INT"),
        (Signal::SIGQUIT, "QUIT"),
        (Signal::SIGPWR, "PWR"),
    ] {
        for pid_ns in [false, true] {
            let token = unique_token();
            let ready = files.join(format!("ready{token}"));
            let script = format!(
                "{TRAPS}; touch {}; sleep 9{token} >/dev/null 2>&1 & wait",
                ready.display()
            );
            let mut args = vec!["sh", "-c", &script];
            if pid_ns {
                args.insert(0, "-p");
            }
            let running = spawn(command(As::User, "pseudo", &args));
            wait_until("pseudo's shell to be ready", || ready.exists());
            running.signal(sig);
            let out = running.finish_within(STOPS_WITHIN);
            assert_eq!(code(&out), 7, "{name} -p {pid_ns}: {}", describe(&out));
            assert_eq!(stdout(&out), format!("got {name}\n"));
            expect_nothing_left(&token);
        }
    }
}
