//! What contain gives an init besides its namespaces: the stop signal of its choice
//! (`--stop-signal`) and limits on its cgroup (`--memory`, `--pids-limit`, `--cpus`), which
//! need a cgroup v2 subtree delegated to the caller, with the controllers in it. Booting
//! systemd itself is tested in debian.rs.

use nix::sys::signal::Signal;
use std::time::Duration;
use tests::*;

/// A busybox init that says which signal reached it, then ends.
const REPORTS_ITS_SIGNAL: &str =
    "for s in TERM USR1 PWR; do trap \"echo got $s; exit 0\" $s; done; \
     touch /tmp/ready; while :; do sleep 1; done";

/// Starts contain with `options` and [`REPORTS_ITS_SIGNAL`], sends it `signal` once init is
/// ready, and returns what contain printed and its status.
fn stop_with(options: &[&str], signal: Signal) -> (String, i32) {
    let root = busybox_rootfs();
    let ready = root.join("tmp/ready");
    let mut args = vec!["-c"];
    args.extend(options);
    let running = spawn(contain_command(
        As::User,
        &args,
        &root,
        &["sh", "-c", REPORTS_ITS_SIGNAL],
    ));
    wait_until("init to be ready", || ready.exists());
    running.signal(signal);
    let out = running.finish_within(Duration::from_secs(20));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        code(&out),
    )
}

#[test]
fn stopping_signals_reach_init_as_the_stop_signal() {
    let (said, status) = stop_with(&["--stop-signal", "USR1"], Signal::SIGTERM);
    assert_eq!((said.as_str(), status), ("got USR1\n", 0));
    let (said, status) = stop_with(&["--stop-signal", "SIGUSR1"], Signal::SIGPWR);
    assert_eq!((said.as_str(), status), ("got USR1\n", 0));
    // Without the option, as before: the signal itself.
    let (said, status) = stop_with(&[], Signal::SIGTERM);
    assert_eq!((said.as_str(), status), ("got TERM\n", 0));
    // Not a stopping signal: passed on as it is.
    let (said, status) = stop_with(&["--stop-signal", "PWR"], Signal::SIGUSR1);
    assert_eq!((said.as_str(), status), ("got USR1\n", 0));
}

#[test]
fn a_stop_signal_init_ignores_ends_in_sigkill_after_the_grace_period() {
    let (said, status) = stop_with(
        &["--stop-signal", "RTMIN+3", "--stop-timeout", "1"],
        Signal::SIGTERM,
    );
    assert_eq!((said.as_str(), status), ("", 143));
}

#[test]
fn bad_stop_signals_and_limits_are_refused() {
    let root = busybox_rootfs();
    for (option, value) in [
        ("--stop-signal", "KILL"),
        ("--stop-signal", "RTMIN+99"),
        ("--stop-signal", "NOPE"),
        ("--memory", "12x"),
        ("--memory", "0"),
        ("--cpus", "0"),
        ("--cpus", "-1"),
        ("--pids-limit", "0"),
    ] {
        let out = contain(As::User, &[option, value], &root, &["true"]);
        let line = expect_error(&out, "contain", 125);
        assert!(line.contains(option) || line.contains(value), "{line}");
    }
}

/// The limits each option sets, and the file inside that shows it.
const LIMITS: [(&str, &str, &str, &str, &str); 3] = [
    ("memory", "--memory", "64m", "memory.max", "67108864"),
    ("pids", "--pids-limit", "32", "pids.max", "32"),
    ("cpu", "--cpus", "0.5", "cpu.max", "50000 100000"),
];

#[test]
fn limits_without_a_delegated_cgroup_are_refused_with_the_fix() {
    let root = busybox_rootfs();
    for (_, option, value, _, _) in LIMITS {
        let out = contain(As::User, &[option, value], &root, &["true"]);
        let line = expect_error(&out, "contain", 125);
        assert!(
            line.starts_with(&format!(
                "contain: {option} needs a cgroup v2 subtree delegated"
            )) && line.contains("systemd-run --user --scope -p Delegate=yes"),
            "{line}"
        );
    }
}

/// In a delegated cgroup: each limit is set on the container's cgroup where its controller
/// is there to be enabled (init reads it in its own cgroup), or refused naming the controller
/// (this machine's cgroup v2 offers none of the three); either way nothing is left behind.
#[test]
fn limits_in_a_delegated_cgroup_are_set_or_name_the_missing_controller() {
    if !require(As::Root) {
        return;
    }
    let Some(cgroup) = TestCgroup::new(Some((user().uid, user().gid))) else {
        return;
    };
    let offered = read(&cgroup.path.join("cgroup.controllers"));
    let root = busybox_rootfs();
    for (controller, option, value, file, shown) in LIMITS {
        let line = cgroup.wrap(&format!(
            "exec contain -c {option} {value} {} cat /sys/fs/cgroup/{file}",
            root.path_arg()
        ));
        let running = spawn(sh_command(As::User, &line));
        cgroup.enter(running.pid());
        let out = running.finish();
        if offered.split_whitespace().any(|c| c == controller) {
            assert_eq!(expect_success(&out).trim(), shown, "{option}");
        } else {
            let line = expect_error(&out, "contain", 125);
            assert!(
                line.starts_with(&format!(
                    "contain: {option} needs the {controller} controller, which {} does not offer",
                    cgroup.path.display()
                )),
                "{line}"
            );
        }
        cgroup.assert_left_clean();
    }
}

/// What a contain killed before its watchdog knew of its cgroups leaves in a delegated cgroup
/// (empty `supervisor` and `container` children) does not stand in the way of the next
/// container: it is replaced, and nothing is left after. A `container` child holding a process
/// is another container's: refused, and left as it is.
#[test]
fn empty_cgroups_left_by_a_killed_contain_are_replaced_and_busy_ones_refused() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs();
    let run_in = |cgroup: &TestCgroup| {
        let line = cgroup.wrap(&format!(
            "exec contain -c --pids-limit 32 {} cat /sys/fs/cgroup/pids.max",
            root.path_arg()
        ));
        let running = spawn(sh_command(As::User, &line));
        cgroup.enter(running.pid());
        running.finish()
    };
    let owner = Some((user().uid, user().gid));
    let Some(fresh) = TestCgroup::new(owner) else {
        return;
    };
    let expected = run_in(&fresh);
    fresh.assert_left_clean();

    let Some(cgroup) = TestCgroup::new(owner) else {
        return;
    };
    for stale in ["supervisor", "container", "container/init.scope"] {
        let path = cgroup.path.join(stale);
        std::fs::create_dir(&path).unwrap();
        std::os::unix::fs::lchown(&path, Some(user().uid), Some(user().gid)).unwrap();
    }
    let out = run_in(&cgroup);
    assert_eq!(
        (code(&out), stdout(&out), stderr(&out)),
        (
            code(&expected),
            stdout(&expected),
            stderr(&expected).replace(fresh.path.to_str().unwrap(), cgroup.path.to_str().unwrap())
        ),
        "{}",
        describe(&out)
    );
    cgroup.assert_left_clean();

    let busy = cgroup.path.join("container");
    std::fs::create_dir(&busy).unwrap();
    let token = unique_token();
    let sleeper = spawn(sh_command(As::User, &format!("exec sleep 9{token}")));
    std::fs::write(busy.join("cgroup.procs"), sleeper.pid().to_string()).unwrap();
    let out = run_in(&cgroup);
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.contains("another container started in the same cgroup"),
        "{line}"
    );
    assert_eq!(
        read(&busy.join("cgroup.procs")).trim(),
        sleeper.pid().to_string()
    );
    assert_eq!(cgroup.children(), vec![busy]);
    sleeper.signal(Signal::SIGKILL);
    drop(sleeper.finish());
}
