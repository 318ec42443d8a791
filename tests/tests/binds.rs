//! contain's own mounts: `--bind SRC[:DEST]`, `--ro-bind SRC[:DEST]` and `--tmpfs DEST`, on a
//! plain DIR, a layered root and the host's sandbox; DEST resolved inside the root; the errors;
//! inject sees them.

use std::fs;
use std::os::unix::fs::symlink;
use tests::*;

/// The output of `contain -c OPTIONS ROOT /bin/sh -c SCRIPT` as the test user, which must
/// succeed.
#[track_caller]
fn contained(options: &[&str], root: &TempDir, script: &str) -> String {
    let options = [&["-c"], options].concat();
    expect_success(&contain(
        As::User,
        &options,
        root,
        &["/bin/sh", "-c", script],
    ))
}

#[test]
fn bind_shows_and_writes_the_hosts_directory_at_dest_made_in_dir() {
    let root = busybox_rootfs();
    let host = TempDir::new();
    host.write("from-host", "hello\n");
    let bind = format!("{}:/srv/data", host.path_arg());
    let out = contained(
        &["--bind", &bind],
        &root,
        "cat /srv/data/from-host; echo back > /srv/data/from-container",
    );
    assert_eq!(out, "hello\n");
    assert_eq!(read(&host.join("from-container")), "back\n");
    // Made in DIR, as a directory, and nothing mounted is left on the host.
    assert!(root.join("srv/data").is_dir());
    assert_eq!(fs::read_dir(root.join("srv/data")).unwrap().count(), 0);
}

#[test]
fn dest_defaults_to_src_and_a_file_is_bound_onto_an_empty_file() {
    let root = busybox_rootfs();
    let host = TempDir::new();
    let file = host.write("motd", "welcome\n");
    let out = contained(
        &[
            "--bind",
            &host.path_arg(),
            "--ro-bind",
            &format!("{}:/etc/motd", file.display()),
        ],
        &root,
        &format!("cat {}/motd /etc/motd", host.path_arg()),
    );
    assert_eq!(out, "welcome\nwelcome\n");
    assert!(root.join("etc/motd").is_file());
    assert_eq!(read(&root.join("etc/motd")), "");
}

#[test]
fn ro_bind_is_read_only_inside() {
    let root = busybox_rootfs();
    let host = TempDir::new();
    host.write("f", "kept\n");
    host.mkdir("sub");
    let script = "echo x > /data/f 2>/dev/null && echo wrote
        touch /data/sub/g 2>/dev/null && echo made
        cat /data/f";
    let bind = format!("{}:/data", host.path_arg());
    let out = contained(&["--ro-bind", &bind], &root, script);
    assert_eq!(out, "kept\n");
    assert_eq!(read(&host.join("f")), "kept\n");
    assert!(!host.join("sub/g").exists());
}

#[test]
fn tmpfs_is_empty_and_private_to_the_container() {
    let root = busybox_rootfs();
    fs::create_dir(root.join("cache")).unwrap();
    root.write("cache/old", "");
    let out = contained(
        &["--tmpfs", "/cache:1m"],
        &root,
        "ls -A /cache; echo new > /cache/new; ls -A /cache; stat -c %a /cache; \
         grep ' /cache ' /proc/mounts | grep -o 'size=[0-9a-z]*'",
    );
    assert_eq!(out, "new\n755\nsize=1024k\n");
    assert!(!root.join("cache/new").exists());
    assert!(root.join("cache/old").exists());
}

#[test]
fn dest_is_resolved_inside_the_root_and_links_never_lead_out() {
    let root = busybox_rootfs();
    let host = TempDir::new();
    let outside = TempDir::new();
    host.write("f", "inside\n");
    // An absolute link to a host directory: inside the root it names root/<that path>.
    symlink(outside.path(), root.join("escape")).unwrap();
    let bind = format!("{}:/escape/x", host.path_arg());
    // While root/<that path> is missing, the link leads nowhere: refused, nothing made.
    let out = contain(As::User, &["-c", "--bind", &bind], &root, &["true"]);
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.ends_with(&format!(
            "No such file or directory (a symbolic link to {}, followed inside {})",
            outside.path_arg(),
            root.path_arg()
        )),
        "{line}"
    );
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "made outside the root"
    );
    let inside = root.mkdir(outside.path().strip_prefix("/").unwrap());
    let out = contained(&["--bind", &bind], &root, "cat /escape/x/f");
    assert_eq!(out, "inside\n");
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "made outside the root"
    );
    assert!(inside.join("x").is_dir(), "x was not made inside the root");
}

#[test]
fn on_a_layered_root_dest_is_made_in_the_writable_layer() {
    let root = busybox_rootfs();
    let host = TempDir::new();
    host.write("f", "layered\n");
    let before = tree_snapshot(root.path());
    let bind = format!("{}:/mnt/new/place", host.path_arg());
    let out = contained(
        &["--tmp-overlay", "--bind", &bind],
        &root,
        "cat /mnt/new/place/f",
    );
    assert_eq!(out, "layered\n");
    assert_eq!(tree_snapshot(root.path()), before, "DIR changed");
}

/// `contain -c --tmp-overlay OPTIONS / /bin/sh -c SCRIPT` as the test user: the host's sandbox.
fn in_the_hosts_sandbox(options: &[&str], script: &str) -> std::process::Output {
    let args = [
        &["-c", "--tmp-overlay"],
        options,
        &["/", "/bin/sh", "-c", script],
    ]
    .concat();
    output(command(As::User, "contain", args))
}

#[test]
fn the_hosts_sandbox_keeps_what_is_written_to_a_bound_directory_only() {
    let project = TempDir::new();
    let other = TempDir::new();
    // SRC below /tmp, which the sandbox gets fresh: bound all the same.
    let script = format!(
        "echo kept > {p}/result; ls {o} 2>&1 | head -1; echo lost > {o}/lost",
        p = project.path_arg(),
        o = other.path_arg()
    );
    let out = in_the_hosts_sandbox(&["--bind", &project.path_arg()], &script);
    let text = stdout(&out);
    assert!(
        text.contains("No such file"),
        "the host's /tmp shows: {}",
        describe(&out)
    );
    assert_eq!(read(&project.join("result")), "kept\n");
    assert!(!other.join("lost").exists());
}

/// Asserts one line `contain: {line}` and status 125, and that DIR did not change.
#[track_caller]
fn expect_refused(options: &[&str], line: &str) {
    let root = busybox_rootfs();
    let before = tree_snapshot(root.path());
    let out = contain(As::User, &[&["-c"], options].concat(), &root, &["true"]);
    assert_eq!(
        expect_error(&out, "contain", 125),
        format!("contain: {line}")
    );
    assert_eq!(tree_snapshot(root.path()), before, "DIR changed");
}

#[test]
fn a_missing_src_a_dest_given_twice_and_a_relative_dest_are_refused() {
    let host = TempDir::new();
    let missing = host.arg("missing");
    expect_refused(
        &["--bind", &missing],
        &format!("--bind {missing}: No such file or directory"),
    );
    let p = host.path_arg();
    expect_refused(
        &[
            "--bind",
            &format!("{p}:/x"),
            "--ro-bind",
            &format!("{p}:/x/"),
        ],
        &format!("--ro-bind {p}:/x: /x is the DEST of --bind {p}:/x already"),
    );
    expect_refused(
        &["--tmpfs", "x"],
        "--tmpfs x: DEST must be an absolute path inside the container",
    );
}

#[test]
fn a_directory_onto_a_file_is_refused() {
    let root = busybox_rootfs();
    let host = TempDir::new();
    let bind = format!("{}:/etc/passwd", host.path_arg());
    let out = contain(As::User, &["-c", "--bind", &bind], &root, &["true"]);
    assert_eq!(
        expect_error(&out, "contain", 125),
        format!(
            "contain: --bind {}:/etc/passwd: {}: Not a directory",
            host.path_arg(),
            root.arg("etc/passwd")
        )
    );
}

#[test]
fn binds_work_with_lock_down_and_inject_sees_them() {
    let host = TempDir::new();
    host.write("f", "shared\n");
    let bind = format!("{}:/shared", host.path_arg());
    let target = BackgroundContainer::boot(
        As::User,
        busybox_rootfs(),
        &["--cap-drop", "all", "--no-new-privs", "--ro-bind", &bind],
        "",
    );
    let out = output(inject_command(
        As::User,
        &[],
        target.supervisor(),
        &["cat", "/shared/f"],
    ));
    assert_eq!(expect_success(&out), "shared\n");
    target.stop();
}

#[test]
fn container_root_can_neither_make_a_ro_bind_writable_nor_unmount_it() {
    let host = TempDir::new();
    host.write("f", "kept\n");
    let bind = format!("{}:/data", host.path_arg());
    // Container root may mount (the control), so what fails after it is the kernel's lock.
    let script = "mount -t tmpfs t /tmp && echo control
        mount -o remount,rw /data 2>/dev/null && echo remounted
        mount -o remount,bind,rw /data 2>/dev/null && echo bind-remounted
        umount /data 2>/dev/null && echo unmounted
        umount -l /data 2>/dev/null && echo detached
        echo changed > /data/f 2>/dev/null && echo written
        cat /data/f";
    for who in [As::User, As::Root].into_iter().filter(|&who| require(who)) {
        let root = busybox_rootfs_of(who);
        let options = ["-c", "--ro-bind", &bind];
        let out = contain(who, &options, &root, &["/bin/sh", "-c", script]);
        assert_eq!(
            expect_success(&out),
            "control\nkept\n",
            "{who:?}: {}",
            describe(&out)
        );
    }
    assert_eq!(read(&host.join("f")), "kept\n");
}
