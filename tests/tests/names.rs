//! Names of running containers: `contain --name`, `contain --list`, `inject NAME`; one live
//! container per name, stale entries taken over, entries gone with the container (also after
//! SIGKILL of contain), and a registry directory that is the caller's or refused.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;
use tests::*;

/// The test user's commands with XDG_RUNTIME_DIR in `runtime`: a registry of their own.
fn with_runtime(mut cmd: Command, runtime: &TempDir) -> Command {
    cmd.env("XDG_RUNTIME_DIR", runtime.path());
    cmd
}

/// `contain -c --name NAME ROOT sleep SECONDS` in the background, and the sleep's PID.
fn named(runtime: &TempDir, name: &str, root: &TempDir, seconds: &str) -> (Running, u32) {
    let cmd = contain_command(
        As::User,
        &["-c", "--stop-timeout", "1", "--name", name],
        root,
        &["sleep", seconds],
    );
    let running = spawn(with_runtime(cmd, runtime));
    let sleep = wait_for_process("the container's sleep", &["sleep", seconds]);
    (running, sleep)
}

fn list(runtime: &TempDir) -> Vec<String> {
    let out = output(with_runtime(
        command(As::User, "contain", ["--list"]),
        runtime,
    ));
    expect_success(&out).lines().map(str::to_string).collect()
}

/// The --list line of supervisor `pid`, if listed.
fn listed(runtime: &TempDir, pid: u32) -> Option<Vec<String>> {
    list(runtime)
        .into_iter()
        .skip(1)
        .map(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .find(|fields| fields.get(1) == Some(&pid.to_string()))
}

#[test]
fn a_named_container_is_listed_entered_by_name_and_its_name_is_taken_while_it_runs() {
    let runtime = TempDir::new();
    let root = busybox_rootfs();
    let seconds = format!("1{}", unique_token());
    let (container, _) = named(&runtime, "web", &root, &seconds);
    let header = &list(&runtime)[0];
    assert!(
        header.starts_with("NAME") && header.ends_with("DIR  COMMAND"),
        "{header}"
    );
    let fields = listed(&runtime, container.pid()).expect("listed");
    assert_eq!(fields[0], "web");
    assert!(fields[2].ends_with('Z'), "since: {fields:?}");
    assert_eq!(fields[3], root.path_arg());
    assert_eq!(fields[4..], ["sleep".to_string(), seconds.clone()]);

    let cmd = with_runtime(
        inject_command(As::User, &[], 0, &["cat", "/proc/1/cmdline"]),
        &runtime,
    );
    // inject_command names a PID: put the name in its place.
    let mut args: Vec<_> = cmd.get_args().map(|a| a.to_os_string()).collect();
    let position = args.iter().position(|a| a == "0").unwrap();
    args[position] = "web".into();
    let out = output(with_runtime(command(As::User, "inject", args), &runtime));
    assert_eq!(expect_success(&out), format!("sleep\0{seconds}\0"));

    let other_root = busybox_rootfs();
    let second = with_runtime(
        contain_command(As::User, &["-c", "--name", "web"], &other_root, &["true"]),
        &runtime,
    );
    assert_eq!(
        expect_error(&output(second), "contain", 125),
        format!(
            "contain: --name web: a container of that name runs (supervisor PID {})",
            container.pid()
        )
    );

    container.signal(Signal::SIGTERM);
    drop(container.finish());
    assert!(
        !runtime.join("contain/web").exists(),
        "the entry outlived the container"
    );
    let out = output(with_runtime(
        command(As::User, "inject", ["web", "true"]),
        &runtime,
    ));
    assert_eq!(
        expect_error(&out, "inject", 125),
        "inject: web: no container of that name runs"
    );
}

#[test]
fn the_entry_goes_with_a_container_whose_contain_was_killed() {
    let runtime = TempDir::new();
    let root = busybox_rootfs();
    let seconds = format!("1{}", unique_token());
    let (container, _) = named(&runtime, "killed", &root, &seconds);
    assert!(runtime.join("contain/killed").exists());
    container.signal(Signal::SIGKILL);
    drop(container.finish());
    wait_until("the entry to go", || {
        !runtime.join("contain/killed").exists()
    });
}

/// Runs a container named `name` and kills it so that its entry stays: contain stopped (so
/// that it does not replace its watchdog), its watchdog killed, then contain. (A stopped
/// watchdog would be woken by SIGCONT once contain's end orphaned its process group.)
fn leave_stale_entry(runtime: &TempDir, root: &TempDir, name: &str) {
    let seconds = format!("1{}", unique_token());
    let (container, sleep) = named(runtime, name, root, &seconds);
    let title = [format!("contain: watchdog of PID {}", container.pid())];
    let watchdog = children_of(container.pid())
        .into_iter()
        .find(|c| c.cmdline == title)
        .expect("a watchdog")
        .pid as i32;
    container.signal(Signal::SIGSTOP);
    kill(Pid::from_raw(watchdog), Signal::SIGKILL).unwrap();
    container.signal(Signal::SIGKILL);
    drop(container.finish());
    let _ = kill(Pid::from_raw(sleep as i32), Signal::SIGKILL);
    assert!(
        runtime.join("contain").join(name).exists(),
        "the entry went"
    );
}

#[test]
fn a_stale_entry_is_taken_over_and_list_removes_one() {
    let runtime = TempDir::new();
    let root = busybox_rootfs();
    leave_stale_entry(&runtime, &root, "stale");
    let (again, _) = named(&runtime, "stale", &root, &format!("2{}", unique_token()));
    assert_eq!(listed(&runtime, again.pid()).expect("listed")[0], "stale");
    again.signal(Signal::SIGTERM);
    drop(again.finish());

    leave_stale_entry(&runtime, &root, "stale");
    assert_eq!(list(&runtime).len(), 1, "a stale entry is listed");
    assert!(
        !runtime.join("contain/stale").exists(),
        "--list left a stale entry"
    );
}

#[test]
fn unnamed_containers_are_listed_and_root_lists_everyones() {
    // Without XDG_RUNTIME_DIR: /tmp/contain-UID, where root looks too.
    let root = busybox_rootfs();
    let seconds = format!("1{}", unique_token());
    let container = spawn(contain_command(
        As::User,
        &["-c"],
        &root,
        &["sleep", &seconds],
    ));
    wait_for_process("the container's sleep", &["sleep", &seconds]);
    let line = |who: As| {
        let out = output(command(who, "contain", ["--list"]));
        let pid = container.pid().to_string();
        expect_success(&out)
            .lines()
            .find(|l| l.split_whitespace().any(|f| f == pid))
            .map(str::to_string)
    };
    wait_until("the container to be listed", || line(As::User).is_some());
    let fields: Vec<String> = line(As::User)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(fields[0], "-");
    if require(As::Root) {
        let fields: Vec<String> = line(As::Root)
            .expect("root lists it")
            .split_whitespace()
            .map(String::from)
            .collect();
        assert_eq!(fields[0], user().uid.to_string());
    }
    container.signal(Signal::SIGTERM);
    drop(container.finish());
}

#[test]
fn a_registry_directory_that_is_a_link_or_open_to_others_is_refused() {
    let runtime = TempDir::new();
    let elsewhere = TempDir::new();
    symlink(elsewhere.path(), runtime.join("contain")).unwrap();
    let root = busybox_rootfs();
    let cmd = contain_command(As::User, &["-c", "--name", "x"], &root, &["true"]);
    let out = output(with_runtime(cmd, &runtime));
    assert_eq!(
        expect_error(&out, "contain", 125),
        format!(
            "contain: the registry of names {}: not a directory (a symbolic link?)",
            runtime.arg("contain")
        )
    );
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);

    let runtime = TempDir::new();
    let dir = runtime.mkdir("contain");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = contain_command(As::User, &["-c", "--name", "x"], &root, &["true"]);
    let line = expect_error(&output(with_runtime(cmd, &runtime)), "contain", 125);
    assert!(line.contains("must be owned by uid"), "{line}");
}

#[test]
fn bad_names_are_refused() {
    let root = busybox_rootfs();
    let out = contain(As::User, &["-c", "--name", "../x"], &root, &["true"]);
    let line = expect_error(&out, "contain", 125);
    assert!(line.contains("a name has 1 to 64 letters"), "{line}");
}

#[test]
fn contain_registry_names_the_registry_and_roots_is_the_harness_own() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        // The user's in a directory of its own; root's in the one the harness gives every
        // command of root's (root_registry), never the host's /run/contain.
        let own = TempDir::new();
        let registry = match who {
            As::User => own.join("names"),
            As::Root => root_registry().to_path_buf(),
        };
        let root = busybox_rootfs_of(who);
        let seconds = format!("1{}", unique_token());
        let name = format!("elsewhere{}", unique_token());
        let mut cmd = contain_command(
            who,
            &["-c", "--stop-timeout", "1", "--name", &name],
            &root,
            &["sleep", &seconds],
        );
        cmd.env(REGISTRY_VAR, &registry);
        let container = spawn(cmd);
        wait_for_process("the container's sleep", &["sleep", &seconds]);
        wait_until("the entry", || registry.join(&name).exists());
        let mut list = command(who, "contain", ["--list"]);
        list.env(REGISTRY_VAR, &registry);
        let listed = expect_success(&output(list));
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().any(|f| f == name)),
            "{who:?}: not listed: {listed}"
        );
        let mut enter = command(who, "inject", [name.as_str(), "cat", "/proc/1/cmdline"]);
        enter.env(REGISTRY_VAR, &registry);
        assert_eq!(
            expect_success(&output(enter)),
            format!("sleep\0{seconds}\0")
        );
        container.signal(Signal::SIGTERM);
        drop(container.finish());
        assert!(!registry.join(&name).exists(), "{who:?}: the entry stayed");
    }

    let root = busybox_rootfs();
    let mut cmd = contain_command(As::User, &["-c", "--name", "x"], &root, &["true"]);
    cmd.env(REGISTRY_VAR, "names");
    assert_eq!(
        expect_error(&output(cmd), "contain", 125),
        "contain: CONTAIN_REGISTRY=names: not an absolute path"
    );
}
