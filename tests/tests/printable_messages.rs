//! Every message of pseudo, contain and inject is one line of printable text, whatever the
//! arguments held: escape sequences, carriage returns, newlines, bells and bytes that are not
//! UTF-8 are shown escaped, never passed raw to the user's terminal.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use tests::*;

/// The hostile parts every argument below is made of.
const HOSTILE: [&[u8]; 5] = [
    b"\x1b[2J\x1b]0;owned\x07",
    b"\r",
    b"\n",
    b"\x07",
    b"\xff\xfe",
];

fn hostile(prefix: &str) -> OsString {
    let mut bytes = prefix.as_bytes().to_vec();
    for part in HOSTILE {
        bytes.extend_from_slice(part);
        bytes.push(b'x');
    }
    OsString::from_vec(bytes)
}

/// Runs `tool` with `args` and asserts one printable line with status `status`.
#[track_caller]
fn expect_printable_error(tool: &str, args: Vec<OsString>, status: i32) {
    let out = output(command(As::User, tool, &args));
    let line = expect_error(&out, tool, status);
    assert!(
        !line.chars().any(|c| c.is_control()),
        "{tool} {args:?}: a control character reached stderr: {line:?}"
    );
    assert!(
        !line.contains('\u{fffd}'),
        "{tool} {args:?}: bytes that are not UTF-8 were lost: {line:?}"
    );
}

fn args(parts: &[&str], last: OsString) -> Vec<OsString> {
    parts.iter().map(OsString::from).chain([last]).collect()
}

#[test]
fn bad_arguments_give_one_printable_line() {
    let root = busybox_rootfs();
    let dir = root.path_arg();
    // Usage errors (clap): an unknown option, values its parsers refuse.
    for tool in ["pseudo", "contain", "inject"] {
        expect_printable_error(tool, vec![hostile("--no-such-option")], 125);
    }
    expect_printable_error("pseudo", args(&["-u"], hostile("0:")), 125);
    expect_printable_error("contain", args(&["-g"], hostile("1:2:")), 125);
    expect_printable_error("contain", args(&["--net"], hostile("x")), 125);
    expect_printable_error("inject", vec![hostile("1")], 125);
    expect_printable_error("inject", args(&["--user"], hostile("9")), 125);
    // The tools' own checks.
    expect_printable_error("contain", vec![hostile("/no/such/dir")], 125);
    expect_printable_error("contain", args(&["--cap-drop"], hostile("sys_")), 125);
    let mut user = args(&["--user"], hostile("1"));
    user.push(dir.clone().into());
    expect_printable_error("contain", user, 125);
    let mut publish = args(&["--net", "pasta", "-p"], hostile("80"));
    publish.push(dir.clone().into());
    expect_printable_error("contain", publish, 125);
    // A command that does not exist, reported from inside the new namespaces.
    expect_printable_error("pseudo", vec![hostile("no-such-command")], 127);
    expect_printable_error("contain", vec![dir.into(), hostile("no-such-command")], 127);
}
