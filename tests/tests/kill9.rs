//! Nothing outlives a SIGKILLed contain or inject: not a container whose init changed its
//! credentials (which clears the parent-death signal), not inject's command after `su`, and not
//! an `-o` hook or what it left running; not even after someone killed the watchdog, whose
//! command line says what it is.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use tests::*;

/// Waits up to 10 s for every process running exactly `cmdline` to end; otherwise kills
/// them (by PID: they are the test's own) and fails.
#[track_caller]
fn expect_gone(cmdline: &[&str], after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_running(cmdline);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for p in &left {
                let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
            }
            panic!("{cmdline:?} still runs after {after}: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `su user -c 'exec sleep SECONDS'`: a command that switches to uid 1000 and then sleeps.
fn su_sleep(seconds: &str) -> Vec<String> {
    ["su", "user", "-c", &format!("exec sleep {seconds}")]
        .map(String::from)
        .to_vec()
}

/// Asserts that the sleep `pid` runs as container uid 1000, not as container root: the
/// credential change that clears the parent-death signal did happen.
#[track_caller]
fn expect_switched_user(who: As, pid: u32) {
    let uid = process(pid).expect("the sleep runs").uid;
    if who == As::User {
        assert_eq!(Some(uid), user().host_uid(1000), "su did not switch users");
    } else {
        assert_ne!(uid, 0, "su did not switch users");
    }
}

fn users() -> Vec<As> {
    [As::User, As::Root]
        .into_iter()
        .filter(|&who| require(who))
        .collect()
}

#[test]
fn sigkill_of_contain_ends_a_container_whose_init_switched_user() {
    if subordinate_ids(1001).is_none() {
        return;
    }
    for who in users() {
        for options in [&["-c"][..], &[]] {
            let root = busybox_rootfs();
            let seconds = format!("1{}", unique_token());
            let argv = su_sleep(&seconds);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let contain = spawn(contain_command(who, options, &root, &argv));
            let sleep = wait_for_process("su's sleep", &["sleep", &seconds]);
            expect_switched_user(who, sleep);
            contain.signal(Signal::SIGKILL);
            expect_gone(&["sleep", &seconds], "contain was killed with SIGKILL");
            drop(contain.finish());
        }
    }
}

/// Injects the command `argv_for(seconds)`, which ends up running `sleep SECONDS` as another
/// user, into a container of each user, SIGKILLs inject and expects that sleep gone and the
/// container untouched.
fn expect_sigkill_of_inject_to_end(argv_for: impl Fn(&str) -> Vec<String>) {
    if subordinate_ids(1001).is_none() {
        return;
    }
    for who in users() {
        let target = BackgroundContainer::boot(who, busybox_rootfs(), &[], "");
        let seconds = format!("1{}", unique_token());
        let argv = argv_for(&seconds);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let injected = spawn(inject_command(who, &[], target.supervisor(), &argv));
        let sleep = wait_for_process("su's sleep", &["sleep", &seconds]);
        expect_switched_user(who, sleep);
        injected.signal(Signal::SIGKILL);
        expect_gone(&["sleep", &seconds], "inject was killed with SIGKILL");
        drop(injected.finish());
        // The container itself lives on, untouched.
        assert!(process_alive(target.sleeper()), "the container ended");
        target.stop();
    }
}

#[test]
fn sigkill_of_inject_ends_a_command_that_switched_user() {
    expect_sigkill_of_inject_to_end(su_sleep);
}

#[test]
fn sigkill_of_inject_ends_what_its_command_started_as_another_user() {
    // The shell stays root; its child switches to uid 1000, as util-linux su's child does.
    expect_sigkill_of_inject_to_end(|seconds| {
        let script = format!("su user -c 'exec sleep {seconds}'; true");
        vec!["sh".into(), "-c".into(), script]
    });
}

#[test]
fn sigkill_of_contain_ends_what_its_outside_hook_left_running() {
    for who in users() {
        let root = busybox_rootfs();
        let (left, init) = (
            format!("1{}", unique_token()),
            format!("2{}", unique_token()),
        );
        let hook = format!("sleep {left} >/dev/null 2>&1 &");
        let options = ["-c", "-o", &hook];
        let contain = spawn(contain_command(who, &options, &root, &["sleep", &init]));
        wait_for_process("the hook's sleep", &["sleep", &left]);
        wait_for_process("init's sleep", &["sleep", &init]);
        contain.signal(Signal::SIGKILL);
        expect_gone(&["sleep", &left], "contain was killed with SIGKILL");
        expect_gone(&["sleep", &init], "contain was killed with SIGKILL");
        drop(contain.finish());
    }
}

#[test]
fn sigkill_of_contain_during_its_outside_hook_ends_the_hook() {
    for who in users() {
        let root = busybox_rootfs();
        let (slow, init) = (
            format!("1{}", unique_token()),
            format!("2{}", unique_token()),
        );
        // `; true` keeps the shell from replacing itself with sleep.
        let hook = format!("sleep {slow}; true");
        let options = ["-c", "-o", &hook];
        let contain = spawn(contain_command(who, &options, &root, &["sleep", &init]));
        wait_for_process("the hook's sleep", &["sleep", &slow]);
        contain.signal(Signal::SIGKILL);
        expect_gone(&["sleep", &slow], "contain was killed with SIGKILL");
        drop(contain.finish());
        assert!(processes_running(&["sleep", &init]).is_empty());
    }
}

#[test]
fn what_an_outside_hook_left_running_ends_with_the_container() {
    let root = busybox_rootfs();
    let left = format!("1{}", unique_token());
    let hook = format!("sleep {left} >/dev/null 2>&1 &");
    let out = contain(As::User, &["-c", "-o", &hook], &root, &["true"]);
    expect_success(&out);
    expect_gone(&["sleep", &left], "the container ended");
}

/// The live child of `tool` (PID) whose command line is its watchdog's, once there is one
/// other than `not`.
#[track_caller]
fn watchdog_of(tool: &str, pid: u32, not: Option<u32>) -> u32 {
    let title = [format!("{tool}: watchdog of PID {pid}")];
    wait_for("the watchdog", || {
        children_of(pid)
            .into_iter()
            .find(|c| c.cmdline == title && Some(c.pid) != not && process_alive(c.pid))
            .map(|c| c.pid)
    })
}

#[test]
fn pgrep_f_for_the_command_finds_the_container_and_not_the_watchdog() {
    let root = busybox_rootfs();
    let seconds = format!("1{}", unique_token());
    let contain = spawn(contain_command(
        As::User,
        &["-c"],
        &root,
        &["sleep", &seconds],
    ));
    let sleep = wait_for_process("the container's sleep", &["sleep", &seconds]);
    watchdog_of("contain", contain.pid(), None);
    // pgrep -nf 'sleep SECONDS': contain's own command line matches too, but is older.
    let out = std::process::Command::new("pgrep")
        .args(["-nf", &format!("sleep {seconds}")])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), sleep.to_string(), "{}", describe(&out));
    contain.signal(Signal::SIGTERM);
    drop(contain.finish());
}

#[test]
fn sigkill_of_contain_after_sigkill_of_its_watchdog_ends_the_container() {
    if subordinate_ids(1001).is_none() {
        return;
    }
    for who in users() {
        let root = busybox_rootfs();
        let seconds = format!("1{}", unique_token());
        let argv = su_sleep(&seconds);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let contain = spawn(contain_command(who, &["-c"], &root, &argv));
        let sleep = wait_for_process("su's sleep", &["sleep", &seconds]);
        expect_switched_user(who, sleep);
        let watchdog = watchdog_of("contain", contain.pid(), None);
        kill(Pid::from_raw(watchdog as i32), Signal::SIGKILL).unwrap();
        // Another takes its place, in the same process group.
        let next = watchdog_of("contain", contain.pid(), Some(watchdog));
        assert_eq!(
            nix::unistd::getpgid(Some(Pid::from_raw(next as i32)))
                .unwrap()
                .as_raw() as u32,
            watchdog
        );
        assert!(
            process_alive(sleep),
            "the container ended with its watchdog"
        );
        contain.signal(Signal::SIGKILL);
        expect_gone(
            &["sleep", &seconds],
            "its watchdog and then contain were killed",
        );
        let out = contain.finish();
        assert!(
            stderr(&out).contains(&format!(
                "contain: warning: the watchdog (PID {watchdog}) has ended: PID {next} guards in its place"
            )),
            "{}",
            describe(&out)
        );
    }
}

#[test]
fn inject_ends_its_command_when_its_watchdog_is_killed() {
    for who in users() {
        let target = BackgroundContainer::boot(who, busybox_rootfs(), &[], "");
        let seconds = format!("1{}", unique_token());
        let injected = spawn(inject_command(
            who,
            &[],
            target.supervisor(),
            &["sleep", &seconds],
        ));
        wait_for_process("the injected sleep", &["sleep", &seconds]);
        let watchdog = watchdog_of("inject", injected.pid(), None);
        kill(Pid::from_raw(watchdog as i32), Signal::SIGKILL).unwrap();
        expect_gone(&["sleep", &seconds], "inject's watchdog was killed");
        let out = injected.finish();
        assert_eq!(code(&out), 137, "{}", describe(&out));
        assert!(
            stderr(&out).contains("has ended: ending the command"),
            "{}",
            describe(&out)
        );
        assert!(process_alive(target.sleeper()), "the container ended");
        target.stop();
    }
}
