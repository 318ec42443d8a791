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
