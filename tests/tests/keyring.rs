//! Each container, and each command inject runs, has a session keyring of its own: it can
//! neither read the caller's keys nor leave keys in the caller's session.
//!
//! The host's keyctl (Debian package keyutils) runs inside through the host's /usr, bound into
//! a busybox root by an `-i` hook. Each script runs in a fresh session of its own
//! (`keyctl session -`), so the tests never touch a real session keyring.

use tests::*;

/// A busybox root whose /usr, /lib and /lib64 are the host's once `USR_HOOK` has run.
fn root_with_keyctl() -> TempDir {
    let root = busybox_rootfs();
    root.mkdir("usr");
    for lib in ["lib", "lib64"] {
        std::os::unix::fs::symlink(format!("usr/{lib}"), root.join(lib)).unwrap();
    }
    root
}

/// The `-i` hook that binds the host's /usr into the container.
const USR_HOOK: &str = "mount --rbind /usr usr";

/// The shell lines, run inside, that report whether the host key `ID` (a shell variable
/// expanded inside) can be read or found, and that plant a key of their own.
const INSIDE: &str = "keyctl print $HOSTKEY >/dev/null 2>&1 && echo host-key-read; \
     keyctl search @s user contain-test-host >/dev/null 2>&1 && echo host-key-found; \
     keyctl add user contain-test-inside planted @s >/dev/null || echo adding-failed; \
     echo inside-done";

/// Runs `run_inside` (which gets HOSTKEY in its environment, and must run INSIDE in the
/// container) in a fresh session holding a host key, then reports what the session holds.
fn in_a_session(run_inside: &str) -> String {
    format!(
        "keyctl session - sh -c '\
           HOSTKEY=$(keyctl add user contain-test-host s3cret @s) || exit 90; export HOSTKEY; \
           {run_inside}; \
           keyctl search @s user contain-test-inside >/dev/null 2>&1 && echo planted-key-in-host-session; \
           echo host-done'"
    )
}

fn expect_isolated(out: &std::process::Output) {
    let text = expect_success(out);
    assert!(text.contains("inside-done"), "{}", describe(out));
    assert!(text.contains("host-done"), "{}", describe(out));
    for leak in [
        "host-key-read",
        "host-key-found",
        "planted-key-in-host-session",
    ] {
        assert!(!text.contains(leak), "{leak}: {}", describe(out));
    }
    assert!(!text.contains("adding-failed"), "{}", describe(out));
}

#[test]
fn a_container_has_a_session_keyring_of_its_own() {
    let locked_down = ["--user", "1000", "--cap-drop", "all", "--no-new-privs"];
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let mut variants = vec![Vec::new()];
        if subordinate_ids(1001).is_some() {
            variants.push(locked_down.to_vec());
        }
        for options in variants {
            let root = root_with_keyctl();
            let options = options.join(" ");
            let script = in_a_session(&format!(
                "contain -c -i \"{USR_HOOK}\" {options} {} /bin/sh -c \"{INSIDE}\"",
                root.path_arg()
            ));
            expect_isolated(&sh(who, &script));
        }
    }
}

#[test]
fn an_injected_command_never_has_the_callers_session_keyring() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let target = BackgroundContainer::boot(who, root_with_keyctl(), &["-i", USR_HOOK], "");
        let script = in_a_session(&format!(
            "inject {} /bin/sh -c \"{INSIDE}\"",
            target.supervisor()
        ));
        expect_isolated(&sh(who, &script));
        target.stop();
    }
}
