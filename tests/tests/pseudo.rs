//! pseudo as its users see it: run as the unprivileged test user (and as root for the root
//! defaults), judged by exit codes, stderr and the host owners of the files it leaves.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use tests::*;

/// Lines of a /proc/PID/uid_map or gid_map with the column padding squeezed out.
fn map_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn runs_the_command_as_root() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let out = run(who, "pseudo", ["id", "-u"]);
        assert_eq!(expect_success(&out), "0\n", "as {who:?}");
        let out = run(who, "pseudo", ["id", "-g"]);
        assert_eq!(expect_success(&out), "0\n", "as {who:?}");
    }
}

#[test]
fn passes_the_exit_code_on() {
    let out = run(As::User, "pseudo", ["sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3, "{}", describe(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_command_killed_by_sigterm_gives_143() {
    let out = run(As::User, "pseudo", ["sh", "-c", "kill $$"]);
    assert_eq!(code(&out), 143, "{}", describe(&out));
}

#[test]
fn sigterm_to_pseudo_reaches_the_command_and_leaves_nothing_running() {
    let seconds = format!("1{}", unique_token());
    let running = spawn(command(As::User, "pseudo", ["sleep", &seconds]));
    expect_sigterm_ends_pseudo(running, &seconds);
}

#[test]
fn without_a_command_runs_sh_reading_stdin() {
    // The harness passes no SHELL, so pseudo falls back to /bin/sh.
    let out = sh(As::User, "echo 'id -u' | pseudo");
    assert_eq!(expect_success(&out), "0\n");
}

#[test]
fn chown_to_container_id_1_gives_the_first_subordinate_ids() {
    let Some((subuid, subgid)) = subordinate_ids(1) else {
        return;
    };
    let dir = TempDir::new();
    let file = dir.write("f", "");
    expect_success(&run(As::User, "pseudo", ["chown", "1:1", &dir.arg("f")]));
    assert_eq!(owner(&file), (subuid.first, subgid.first));
}

#[test]
fn files_created_inside_belong_to_the_user_on_the_host() {
    let dir = TempDir::new();
    expect_success(&run(As::User, "pseudo", ["touch", &dir.arg("f")]));
    assert_eq!(owner(&dir.join("f")), (user().uid, user().gid));
}

#[test]
fn unpacking_a_tar_archive_maps_its_owners() {
    let Some(_) = subordinate_ids(1001) else {
        return;
    };
    let dir = TempDir::new();
    dir.mkdir("src");
    dir.mkdir("dest");
    // Host tar writes the owners into the archive itself: pseudo plays no part in making it.
    let script = "cd src && touch zero one thousand && mkdir dir \
        && tar --numeric-owner --owner=0 --group=0 -cf ../owners.tar zero \
        && tar --numeric-owner --owner=1 --group=1 -rf ../owners.tar one \
        && tar --numeric-owner --owner=1000 --group=1000 -rf ../owners.tar thousand dir";
    let mut make = sh_command(As::User, script);
    make.current_dir(dir.path());
    expect_success(&output(make));

    let out = run(
        As::User,
        "pseudo",
        [
            "tar",
            "-x",
            "-f",
            &dir.arg("owners.tar"),
            "-C",
            &dir.arg("dest"),
        ],
    );
    expect_success(&out);
    let u = user();
    for (name, id) in [("zero", 0), ("one", 1), ("thousand", 1000), ("dir", 1000)] {
        let expected = (u.host_uid(id).unwrap(), u.host_gid(id).unwrap());
        assert_eq!(
            owner(&dir.join("dest").join(name)),
            expected,
            "{name} (owner {id})"
        );
    }
}

#[test]
fn an_invalid_map_is_one_line_exit_125_and_changes_nothing() {
    let too_many: Vec<String> = (0..341).map(|i| format!("{i}:{}:1", 100_000 + i)).collect();
    let too_many = too_many.join(",");
    // (option, map, parts the message must name)
    let cases: &[(&str, &str, &[&str])] = &[
        ("-u", "", &["range ''", "START:LOWER:COUNT"]),
        ("-u", "0:1000", &["'0:1000'", "START:LOWER:COUNT"]),
        ("-u", "0::1", &["'0::1'", "LOWER is empty"]),
        ("-g", ":1000:1", &["':1000:1'", "START is empty"]),
        ("-u", "0:x:1", &["'0:x:1'", "LOWER 'x' is not a number"]),
        (
            "-g",
            "0:1000:-1",
            &["'0:1000:-1'", "COUNT '-1' is not a number"],
        ),
        ("-u", "0:1000:0", &["0:1000:0", "COUNT is 0"]),
        ("-u", "0:4294967296:1", &["LOWER '4294967296'", "32 bits"]),
        ("-g", "1:1:4294967295", &["1:1:4294967295", "32 bits"]),
        ("-u", "0:4294967295:1", &["0:4294967295:1", "32 bits"]),
        (
            "-u",
            "0:1000:10,5:2000:10",
            &["0:1000:10", "5:2000:10", "inside the container"],
        ),
        (
            "-g",
            "0:1000:10,10:1005:10",
            &["0:1000:10", "10:1005:10", "on the host"],
        ),
        ("-u", &too_many, &["341 ranges", "340"]),
        (
            "-u",
            "1:1000:1",
            &["uid map 1:1000:1", "container uid 0 is not mapped"],
        ),
        (
            "-g",
            "1:1000:1",
            &["gid map 1:1000:1", "container gid 0 is not mapped"],
        ),
    ];
    let dir = TempDir::new();
    let witness = dir.arg("created");
    for (option, map, parts) in cases {
        let out = run(As::User, "pseudo", [*option, *map, "touch", &witness]);
        let line = expect_error(&out, "pseudo", 125);
        for part in *parts {
            assert!(
                line.contains(part),
                "{option} {map:.40}: {line:?} does not name {part:?}"
            );
        }
        assert!(
            !dir.join("created").exists(),
            "{option} {map:.40}: the command ran"
        );
    }
}

#[test]
fn a_range_not_granted_is_refused_by_newuidmap_in_one_line() {
    let Some(_) = subordinate_ids(1) else {
        return;
    };
    let u = user();
    let dir = TempDir::new();
    // Host uid 0 is never the test user's to map.
    let map = format!("0:{}:1,1:0:1", u.uid);
    let out = run(
        As::User,
        "pseudo",
        ["-u", &map, "touch", &dir.arg("created")],
    );
    let line = expect_error(&out, "pseudo", 125);
    assert!(line.contains("newuidmap"), "{line}");
    assert!(line.contains("/etc/subuid"), "{line}");
    assert!(!dir.join("created").exists());
}

#[test]
fn a_missing_command_is_127() {
    let out = run(As::User, "pseudo", ["no-such-command-here"]);
    let line = expect_error(&out, "pseudo", 127);
    assert_eq!(line, "pseudo: no-such-command-here: command not found");
}

#[test]
fn a_file_that_is_not_executable_is_126() {
    let dir = TempDir::new();
    dir.write("script", "#!/bin/sh\ntouch created\n");
    let out = run(As::User, "pseudo", [dir.arg("script")]);
    let line = expect_error(&out, "pseudo", 126);
    assert!(line.contains(&dir.arg("script")), "{line}");
    assert!(!dir.join("created").exists());
}

#[test]
fn a_missing_newuidmap_names_the_uidmap_package() {
    let Some(_) = subordinate_ids(1) else {
        return;
    };
    let dir = TempDir::new();
    let empty = dir.mkdir("empty");
    // pseudo finds newuidmap and newgidmap through PATH: an empty directory hides them.
    let mut cmd = command(As::User, "pseudo", ["/bin/touch", &dir.arg("created")]);
    cmd.env("PATH", &empty);
    let line = expect_error(&output(cmd), "pseudo", 125);
    assert!(line.contains("not installed"), "{line}");
    assert!(line.contains("Debian package uidmap"), "{line}");
    assert!(!dir.join("created").exists());
}

#[test]
fn stdin_reaches_the_command() {
    let out = sh(As::User, "echo hi | pseudo cat");
    assert_eq!(expect_success(&out), "hi\n");

    let mut cmd = command(As::User, "pseudo", ["cat"]);
    cmd.stdin(Stdio::piped());
    let mut running = spawn(cmd);
    use std::io::Write;
    running
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    assert_eq!(expect_success(&running.finish()), "line one\nline two\n");
}

#[test]
fn environment_and_working_directory_are_kept() {
    let dir = TempDir::new();
    let setup = |cmd: &mut std::process::Command| {
        cmd.env("MARKER", "a b\tc")
            .env("EMPTY", "")
            .current_dir(dir.path());
    };
    let mut outside = sh_command(As::User, "env | sort; pwd");
    setup(&mut outside);
    let mut inside = command(As::User, "pseudo", ["sh", "-c", "env | sort; pwd"]);
    setup(&mut inside);
    let outside = expect_success(&output(outside));
    let inside = expect_success(&output(inside));
    assert!(inside.contains("MARKER=a b\tc\n"), "{inside}");
    assert!(
        inside.ends_with(&format!("{}\n", dir.path().display())),
        "{inside}"
    );
    assert_eq!(inside, outside);
}

#[test]
fn as_root_the_default_map_keeps_host_root_out() {
    if !require(As::Root) {
        return;
    }
    let out = run(
        As::Root,
        "pseudo",
        ["cat", "/proc/self/uid_map", "/proc/self/gid_map"],
    );
    // One block of 65536 IDs that no host account has (see tests/tests/hostile_code.rs).
    let (base, gid_base) = container_root_on_host(As::Root);
    assert_eq!(base, gid_base);
    let expected = format!("0 {base} 65536");
    let lines = map_lines(&expect_success(&out));
    assert_eq!(lines, [expected.clone(), expected]);

    // Container root's files belong to the block's first ID on the host, the others follow.
    let dir = TempDir::new();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    expect_success(&run(As::Root, "pseudo", ["touch", &dir.arg("root")]));
    expect_success(&run(As::Root, "pseudo", ["touch", &dir.arg("user")]));
    expect_success(&run(
        As::Root,
        "pseudo",
        ["chown", "1000:1000", &dir.arg("user")],
    ));
    assert_eq!(owner(&dir.join("root")), (base, base));
    assert_eq!(owner(&dir.join("user")), (base + 1000, base + 1000));
}

#[test]
fn as_a_user_the_default_map_is_the_user_then_the_subordinate_range() {
    let Some((subuid, subgid)) = subordinate_ids(1) else {
        return;
    };
    let u = user();
    let out = run(As::User, "pseudo", ["cat", "/proc/self/uid_map"]);
    let lines = map_lines(&expect_success(&out));
    assert_eq!(
        lines[..2],
        [
            format!("0 {} 1", u.uid),
            format!("1 {} {}", subuid.first, subuid.count)
        ]
    );
    let out = run(As::User, "pseudo", ["cat", "/proc/self/gid_map"]);
    let lines = map_lines(&expect_success(&out));
    assert_eq!(
        lines[..2],
        [
            format!("0 {} 1", u.gid),
            format!("1 {} {}", subgid.first, subgid.count)
        ]
    );
}

#[test]
fn explicit_maps_are_used_as_given() {
    let u = user();
    let uid_map = format!("0:{}:1", u.uid);
    let gid_map = format!("0:{}:1", u.gid);
    let out = run(
        As::User,
        "pseudo",
        [
            "-u",
            &uid_map,
            "-g",
            &gid_map,
            "cat",
            "/proc/self/uid_map",
            "/proc/self/gid_map",
        ],
    );
    assert_eq!(
        map_lines(&expect_success(&out)),
        [format!("0 {} 1", u.uid), format!("0 {} 1", u.gid)]
    );
}

#[test]
fn mount_option_gives_a_private_mount_namespace() {
    let dir = TempDir::new();
    let mnt = dir.mkdir("mnt");
    let script = format!(
        "mount -t tmpfs none {0} && touch {0}/inside && ls {0}",
        mnt.display()
    );
    let out = run(As::User, "pseudo", ["-m", "sh", "-c", &script]);
    assert_eq!(expect_success(&out), "inside\n");
    assert!(
        !mnt.join("inside").exists(),
        "the tmpfs was visible on the host"
    );

    // Without -m the host's mount namespace is not the user's to change.
    let out = run(As::User, "pseudo", ["sh", "-c", &script]);
    assert_ne!(code(&out), 0, "{}", describe(&out));
    assert!(!mnt.join("inside").exists());
}

#[test]
fn help_and_version_exit_0() {
    let out = run(As::User, "pseudo", ["--help"]);
    let help = expect_success(&out);
    assert!(help.contains("Usage: pseudo"), "{help}");
    assert!(help.contains("-u <MAP>"), "{help}");
    let out = run(As::User, "pseudo", ["--version"]);
    assert_eq!(
        expect_success(&out),
        format!("pseudo {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_option_is_one_line_exit_125() {
    let dir = TempDir::new();
    let out = run(
        As::User,
        "pseudo",
        ["--no-such-option", "touch", &dir.arg("created")],
    );
    let line = expect_error(&out, "pseudo", 125);
    assert!(line.contains("--no-such-option"), "{line}");
    assert!(!dir.join("created").exists());
}
