//! README.md's tour of five minutes, run as it stands there: its code blocks are read from
//! README.md and run as the test user in a fresh directory, so the front door cannot show a
//! command that does not work.
//!
//! The pseudo, contain, inject and sandbox blocks run in one shell, one after the other, as a
//! reader pastes them; the GUI block runs on a headless Xvfb standing in for the reader's
//! display, until the container's display shows in a window on it. The Debian block is `examples/debian.sh DIR`, which tests/tests/debian.rs runs
//! (bootstrapping once is enough): here it is only checked to be that command.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use tests::*;

/// The tour's `sh` blocks, in order: pseudo, contain, inject, sandbox, sandbox keeping $PWD,
/// GUI, Debian.
fn tour_blocks() -> Vec<String> {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("reading README.md");
    let start = readme
        .find("\n## A tour of five minutes\n")
        .expect("README.md has no section 'A tour of five minutes'");
    let section = &readme[start + 1..];
    let section = &section[..section[1..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 1)];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block in the tour");
    let expected = [
        "pseudo tar",
        "contain box",
        "inject web",
        "--tmp-overlay /",
        "--bind \"$PWD\"",
        "--gui xephyr",
        "examples/debian.sh",
    ];
    assert_eq!(
        blocks.len(),
        expected.len(),
        "the tour's blocks changed: {blocks:#?}"
    );
    for (block, marker) in blocks.iter().zip(expected) {
        assert!(block.contains(marker), "expected {marker:?} in {block}");
    }
    blocks
}

#[test]
fn the_tours_pseudo_contain_inject_and_sandbox_blocks_work_as_shown() {
    let Some(_) = subordinate_ids(1000) else {
        return;
    };
    let blocks = tour_blocks();
    let home = &user().home;
    if !home.is_dir() {
        skip(&format!(
            "the tour's sandbox writes to $HOME, and {} does not exist",
            home.display()
        ));
        return;
    }
    let leftover = home.join("sandboxed");
    let _ = fs::remove_file(&leftover);
    let gone = home.join("gone");
    let _ = fs::remove_file(&gone);

    let dir = TempDir::new();
    let script = format!(
        "set -eu\ncd {}\n{}{}{}{}{}",
        dir.path_arg(),
        blocks[0],
        blocks[1],
        blocks[2],
        blocks[3],
        blocks[4]
    );
    let out = sh(As::User, &script);
    let text = expect_success(&out);

    // pseudo: the owners inside, then on the host.
    let inside: Vec<_> = ls_rows(&text, " group\n")
        .into_iter()
        .chain(ls_rows(&text, " passwd\n"))
        .collect();
    assert!(
        inside
            .iter()
            .any(|(uid, name)| uid == "1000" && name == "group"),
        "pseudo ls -ln did not show group owned by 1000: {text}"
    );
    assert!(
        inside
            .iter()
            .any(|(uid, name)| uid == "0" && name == "passwd"),
        "pseudo ls -ln did not show passwd owned by 0: {text}"
    );
    let expected_group = (
        user().host_uid(1000).unwrap(),
        user().host_gid(1000).unwrap(),
    );
    assert_eq!(owner(&dir.join("box/etc/group")), expected_group);
    let expected_passwd = (user().host_uid(0).unwrap(), user().host_gid(0).unwrap());
    assert_eq!(owner(&dir.join("box/etc/passwd")), expected_passwd);

    // contain: the shell is PID 1, and ps sees only the container's processes.
    assert!(text.contains("I am PID 1\n"), "{text}");

    // inject: the container's hostname, its init in its ps, and contain's 0 (set -e).
    assert!(
        text.lines().any(|l| l == "box"),
        "inject $! hostname: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("trap")),
        "inject $! ps did not show the init as PID 1: {text}"
    );

    // The sandbox: the file was there inside, never on the host.
    assert!(text.lines().any(|l| l == "hello"), "{text}");
    assert!(text.lines().any(|l| l == "not on the host"), "{text}");
    assert!(
        !leftover.exists(),
        "{} reached the host",
        leftover.display()
    );
}

/// The rows of `ls -ln` output that end with `suffix` (e.g. " group\n"), as (uid, name).
fn ls_rows(text: &str, suffix: &str) -> Vec<(String, String)> {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with(suffix))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.len() >= 9).then(|| (fields[2].to_string(), fields[8].to_string()))
        })
        .collect()
}

#[test]
fn the_tours_gui_block_shows_the_containers_display_on_the_callers() {
    let blocks = tour_blocks();
    for (program, package) in [
        ("Xvfb", "xvfb"),
        ("Xephyr", "xserver-xephyr"),
        ("xmessage", "x11-utils"),
        ("xwininfo", "x11-utils"),
    ] {
        if !Path::new("/usr/bin").join(program).exists() {
            skip(&format!("needs {program} (Debian package {package})"));
            return;
        }
    }
    // The reader's display: an Xvfb of the test user's, in a mount namespace of its own so
    // that its socket file stays off the host's /tmp (clients reach it by its abstract
    // socket, in the host's network namespace).
    let mut xvfb = sh_command(
        As::User,
        "exec unshare -Urm sh -c 'mount -n -t tmpfs tmpfs /tmp && mkdir /tmp/.X11-unix && \
         exec Xvfb -displayfd 1 -nolisten tcp -screen 0 1280x1024x24'",
    );
    let mut server = xvfb
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting Xvfb");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let display = format!(":{}", line.trim());
    let server = XvfbGuard(server);
    assert!(line.trim().parse::<u32>().is_ok(), "Xvfb wrote {line:?}");

    let dir = TempDir::new();
    let mut cmd = sh_command(
        As::User,
        &format!("set -eu\ncd {}\n{}", dir.path_arg(), blocks[5]),
    );
    cmd.env("DISPLAY", &display);
    let tour = spawn(cmd);
    let title = "\"contain /\"";
    wait_until(
        "the container's display shows in a window on the caller's",
        || {
            let mut query = sh_command(As::User, "xwininfo -root -tree");
            query.env("DISPLAY", &display);
            stdout(&output(query)).contains(title)
        },
    );
    let out = tour.finish();
    expect_success(&out);
    drop(server);
}

/// Kills the Xvfb when the test ends, however it ends.
struct XvfbGuard(std::process::Child);

impl Drop for XvfbGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

#[test]
fn the_tours_debian_block_is_the_script_the_debian_tests_run() {
    let blocks = tour_blocks();
    let words: Vec<&str> = blocks[6].split_whitespace().collect();
    assert_eq!(words.len(), 2, "{}", blocks[6]);
    assert_eq!(words[0], "examples/debian.sh");
    assert!(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/debian.sh"
    ))
    .exists());
    let debian_tests = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/debian.rs"))
        .expect("reading tests/tests/debian.rs");
    assert!(debian_tests.contains("example(&work, \"debian.sh\")"));
}
