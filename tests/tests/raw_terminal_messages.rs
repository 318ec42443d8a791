//! While contain relays the console, the caller's terminal is in raw mode, where "\n" does not
//! return to the first column. A message that lands on it then (the container's init cannot
//! run the command) ends its line with "\r\n" itself, so the shell's next prompt starts a line
//! instead of hanging below the message's end.

use tests::*;

#[test]
fn a_message_on_the_raw_terminal_ends_its_line() {
    let root = busybox_rootfs();
    let script = format!("contain {} /nonexistent; echo status=$?", root.path_arg());
    let out = on_terminal(As::User, &script);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("contain: /nonexistent: No such file or directory\r\nstatus=127\r\n"),
        "{shown:?}"
    );
}
