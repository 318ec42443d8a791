//! As root, container root is a host ID of root's default block, which may not walk a 0700 directory of host
//! root's such as /root, /var/lib/machines or a `mktemp -d` directory. DIR below one is still
//! DIR that the caller named and could reach: contain boots it (on a layered root too), and runs
//! the -i hook in it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use tests::*;

/// A busybox tree at OUTER/rootfs, OUTER a fresh directory of host root's, mode 0700; OUTER is
/// returned too, to keep it until the test ends.
fn tree_below_a_root_only_directory() -> (TempDir, std::path::PathBuf) {
    let outer = TempDir::new();
    std::os::unix::fs::chown(outer.path(), Some(0), Some(0)).unwrap();
    fs::set_permissions(outer.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let rootfs = busybox_rootfs_of(As::Root);
    let dir = outer.join("rootfs");
    fs::rename(rootfs.path(), &dir).unwrap();
    (outer, dir)
}

#[test]
fn root_boots_a_tree_below_a_directory_only_host_root_may_enter() {
    if !require(As::Root) {
        return;
    }
    let (outer, dir) = tree_below_a_root_only_directory();
    let dir = dir.to_str().unwrap();
    for mode in MODES {
        let mut args = mode.to_vec();
        args.extend([
            "-i",
            "touch tmp/hooked",
            dir,
            "sh",
            "-c",
            "echo $$; ls /tmp",
        ]);
        let out = output(command(As::Root, "contain", &args));
        assert_eq!(expect_success(&out), "1\nhooked\n", "{mode:?}");
        fs::remove_file(outer.join("rootfs/tmp/hooked")).unwrap();
    }
}

/// The same with a layered root: the overlay's lowest layer is DIR, reached the same way.
#[test]
fn root_layers_a_tree_below_a_directory_only_host_root_may_enter() {
    if !require(As::Root) {
        return;
    }
    let (_outer, dir) = tree_below_a_root_only_directory();
    let before = tree_snapshot(&dir);
    let args = [
        "--tmp-overlay",
        "-i",
        "touch hooked",
        dir.to_str().unwrap(),
        "sh",
        "-c",
        "echo $$ >/tmp/pid; cat /tmp/pid; ls /hooked",
    ];
    let out = output(command(As::Root, "contain", args));
    assert_eq!(expect_success(&out), "1\n/hooked\n");
    assert_eq!(tree_snapshot(&dir), before, "DIR changed");
}
