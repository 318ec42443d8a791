//! The environment and working directory of a container's command: `-e`, `--env-file`, `-w`,
//! `--hostname` of contain, HOME and USER of the user inside, the host's sandbox, and inject's
//! command, which gets the container's environment and never inject's own.

use std::collections::BTreeMap;
use tests::*;

/// `env` output as a map.
fn variables(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[track_caller]
fn expect_variables(env: &BTreeMap<String, String>, expected: &[(&str, &str)], absent: &[&str]) {
    for (name, value) in expected {
        assert_eq!(
            env.get(*name).map(String::as_str),
            Some(*value),
            "{name} in {env:?}"
        );
    }
    for name in absent {
        assert!(!env.contains_key(*name), "{name} passed: {env:?}");
    }
}

const SESSION: [&str; 6] = [
    "DISPLAY",
    "XAUTHORITY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
    "SSH_AUTH_SOCK",
    "XDG_RUNTIME_DIR",
];

/// Adds the session variables and a secret to a command's environment.
fn with_callers_sessions(cmd: &mut std::process::Command) {
    for name in SESSION {
        cmd.env(name, "/the/callers/session");
    }
    cmd.env("CLOUD_TOKEN", "secret").env("LANG", "C.UTF-8");
}

#[test]
fn env_options_and_files_set_variables_and_nothing_of_the_caller_passes() {
    let root = busybox_rootfs();
    let files = TempDir::new();
    let file = files.write(
        "vars",
        "# defaults\nA=from-file\n\nC=three words\nFROM_CALLER\n",
    );
    let options = [
        "-c",
        "--env-file",
        file.to_str().unwrap(),
        "-e",
        "A=1",
        "-e",
        "LANG",
        "-e",
        "UNSET_IN_CALLER",
    ];
    let mut cmd = contain_command(As::User, &options, &root, &["env"]);
    with_callers_sessions(&mut cmd);
    cmd.env("FROM_CALLER", "yes");
    let env = variables(&expect_success(&output(cmd)));
    expect_variables(
        &env,
        &[
            ("A", "1"),
            ("C", "three words"),
            ("FROM_CALLER", "yes"),
            ("LANG", "C.UTF-8"),
            ("container", "contain"),
            ("HOME", "/root"),
            ("USER", "root"),
        ],
        &[&SESSION[..], &["UNSET_IN_CALLER", "CLOUD_TOKEN"]].concat(),
    );
}

#[test]
fn home_and_user_are_the_user_insides_unless_given() {
    if subordinate_ids(1001).is_none() {
        return;
    }
    let root = busybox_rootfs();
    let out = contain(As::User, &["-c", "--user", "1000"], &root, &["env"]);
    let env = variables(&expect_success(&out));
    expect_variables(&env, &[("HOME", "/tmp"), ("USER", "user")], &[]);
    let out = contain(As::User, &["-c", "-e", "HOME=/elsewhere"], &root, &["env"]);
    let env = variables(&expect_success(&out));
    expect_variables(&env, &[("HOME", "/elsewhere"), ("USER", "root")], &[]);
}

#[test]
fn workdir_and_hostname() {
    let root = busybox_rootfs();
    let out = contain(
        As::User,
        &["-c", "-w", "/etc", "--hostname", "box"],
        &root,
        &["sh", "-c", "pwd; hostname; cat passwd | head -1"],
    );
    assert_eq!(
        expect_success(&out),
        "/etc\nbox\nroot:x:0:0:root:/root:/bin/sh\n"
    );
    let out = contain(As::User, &["-c", "-w", "/missing"], &root, &["true"]);
    assert_eq!(
        expect_error(&out, "contain", 125),
        "contain: -w /missing: No such file or directory"
    );
}

#[test]
fn an_unreadable_env_file_or_a_bad_line_is_one_line() {
    let root = busybox_rootfs();
    let files = TempDir::new();
    let bad = files.write("bad", "A=1\n=2\n");
    let out = contain(
        As::User,
        &["-c", "--env-file", bad.to_str().unwrap()],
        &root,
        &["true"],
    );
    assert_eq!(
        expect_error(&out, "contain", 125),
        format!(
            "contain: --env-file {}: line 2: the variable's NAME is empty",
            bad.display()
        )
    );
    let missing = files.arg("missing");
    let out = contain(As::User, &["-c", "--env-file", &missing], &root, &["true"]);
    assert_eq!(
        expect_error(&out, "contain", 125),
        format!("contain: --env-file {missing}: No such file or directory")
    );
}

#[test]
fn the_hosts_sandbox_starts_where_the_caller_is_with_the_callers_variables_but_no_sessions() {
    let mut cmd = command(
        As::User,
        "contain",
        ["-c", "--tmp-overlay", "/", "/bin/sh", "-c", "pwd; env"],
    );
    with_callers_sessions(&mut cmd);
    cmd.current_dir("/usr/share");
    let text = expect_success(&output(cmd));
    assert_eq!(text.lines().next(), Some("/usr/share"));
    let env = variables(&text);
    let home = user().home.to_str().unwrap().to_string();
    expect_variables(
        &env,
        &[
            ("HOME", &home),
            ("USER", &user().name),
            ("LANG", "C.UTF-8"),
            ("container", "contain"),
        ],
        &[&SESSION[..], &["CLOUD_TOKEN"]].concat(),
    );
    assert!(
        env["PATH"].starts_with(bin_dir_of_the_tools().as_str()),
        "{env:?}"
    );
}

/// The directory the harness puts first in PATH: the tools'.
fn bin_dir_of_the_tools() -> String {
    bin("contain")
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn inject_gives_the_containers_environment_and_the_callers_options_alone() {
    for who in [As::User, As::Root].into_iter().filter(|&who| require(who)) {
        let target =
            BackgroundContainer::boot(who, busybox_rootfs(), &["-e", "SET_BY=contain"], "");
        let mut cmd = inject_command(who, &["-e", "X=2"], target.supervisor(), &["env"]);
        with_callers_sessions(&mut cmd);
        cmd.env("TERM", "dumb");
        let env = variables(&expect_success(&output(cmd)));
        expect_variables(
            &env,
            &[
                ("SET_BY", "contain"),
                ("X", "2"),
                ("TERM", "dumb"),
                ("HOME", "/root"),
                ("USER", "root"),
                ("container", "contain"),
            ],
            &[&SESSION[..], &["CLOUD_TOKEN", "LANG"]].concat(),
        );
        if subordinate_ids(1001).is_some() {
            let cmd = inject_command(who, &["--user", "1000"], target.supervisor(), &["env"]);
            let env = variables(&expect_success(&output(cmd)));
            expect_variables(&env, &[("HOME", "/tmp"), ("USER", "user")], &[]);
        }
        target.stop();
    }
}
