//! As root, container root is the first ID of root's default block, not the caller: `--overlay STATE` gives the
//! `upper` and `work` directories it makes in STATE to container root, which mounts the overlay
//! and writes to them; what the container wrote is there on the next run, and DIR is untouched.

use std::os::unix::fs::MetadataExt;
use tests::*;

#[test]
fn root_keeps_a_layered_roots_changes_in_state() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs_of(As::Root);
    // STATE is the caller's, root's: contain refuses one of another user's.
    let temp = TempDir::new();
    let state = temp.mkdir("state");
    std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
    let before = tree_snapshot(root.path());
    let state_arg = state.to_str().unwrap();
    let overlay = ["--overlay", state_arg];
    let out = contain(
        As::Root,
        &overlay,
        &root,
        &["sh", "-c", "echo kept >/tmp/f"],
    );
    expect_success(&out);
    let out = contain(As::Root, &overlay, &root, &["cat", "/tmp/f"]);
    assert_eq!(expect_success(&out), "kept\n");
    assert_eq!(tree_snapshot(root.path()), before, "DIR changed");
    let upper = std::fs::metadata(state.join("upper/tmp/f")).unwrap();
    assert_eq!(upper.uid(), container_root_on_host(As::Root).0);
}
