//! One-line errors and the exit statuses the tools promise.
//!
//! Every failure leaves a tool as `tool: what failed: why` on stderr and one of the statuses
//! below; the command's own status passes through untouched otherwise.
//!
//! It must not print anything but one printable line per failure, and it does not read the command
//! line (cli does) or write the manual (manual does).

use std::fmt;
use std::sync::OnceLock;

/// The tool's own failure (bad input, a refused namespace, a helper that failed).
pub const FAILURE: i32 = 125;
/// The command exists but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// The command does not exist.
pub const NOT_FOUND: i32 = 127;

static TOOL: OnceLock<&'static str> = OnceLock::new();

/// The name that prefixes every message: `contain`, `pseudo` or `inject`.
pub fn tool() -> &'static str {
    TOOL.get().copied().unwrap_or("common")
}

/// An error that must end the tool with a particular status rather than [`FAILURE`].
#[derive(Debug)]
pub struct ExitStatus {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitStatus {}

/// Builds an error that ends the tool with `code`.
pub fn exit_error(code: i32, message: impl Into<String>) -> anyhow::Error {
    ExitStatus {
        code,
        message: message.into(),
    }
    .into()
}

/// The status an error ends the tool with.
pub fn status_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<ExitStatus>())
        .map_or(FAILURE, |e| e.code)
}

/// Text as one line of printable characters: what the input held (a name with an escape
/// sequence, a carriage return or a newline in it) must not reach the user's terminal raw. Each
/// control character becomes a C escape (`\e`, `\r`, `\n`, `\a`, `\t`, ... or `\xHH`), as
/// `ls -b` shows names; C1 controls and the bidirectional overrides, which reorder what the
/// terminal shows, become `\u{HHHH}`.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_printable(&mut out, c);
    }
    out.into()
}

/// Bytes that should be text (a path, an argument) as one printable line: as [`printable`],
/// and each byte that is not UTF-8 as `\xHH`.
pub fn shown(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_printable(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// An OS string (a path, an argument) as one printable line; see [`shown`].
pub fn shown_os(text: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    shown(text.as_bytes())
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_printable(out: &mut String, c: char) {
    match c {
        '\x1b' => out.push_str("\\e"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0b' => out.push_str("\\v"),
        '\x0c' => out.push_str("\\f"),
        c if (c as u32) < 0x80 && needs_escape(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if needs_escape(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Renders an error chain as one line: `what failed: why: deeper why`.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut text = printable(&format!("{err:#}")).into_owned();
    // std's I/O errors end in " (os error N)", which tells a user nothing more.
    while let Some(start) = text.find(" (os error ") {
        match text[start..].find(')') {
            Some(len) => text.replace_range(start..start + len + 1, ""),
            None => break,
        }
    }
    text
}

/// Prints `tool: message` on stderr.
pub fn report(message: &str) {
    eprint!("{}: {}{}", tool(), printable(message), line_end());
}

/// Prints `tool: warning: message` on stderr.
pub fn warn(message: &str) {
    eprint!("{}: warning: {}{}", tool(), printable(message), line_end());
}

/// The end of a message line on stderr: "\r\n" on a terminal in raw mode, which does not
/// return to the first column at "\n" (contain's terminal while it relays the console: the
/// container's init reports a command it cannot run there), else "\n".
fn line_end() -> &'static str {
    use nix::sys::termios::{tcgetattr, OutputFlags};
    match tcgetattr(std::io::stderr()) {
        Ok(t)
            if !t
                .output_flags
                .contains(OutputFlags::OPOST | OutputFlags::ONLCR) =>
        {
            "\r\n"
        }
        _ => "\n",
    }
}

/// The body of every `main`: names the tool, runs it and turns its result into the exit status.
pub fn run_main(name: &'static str, body: impl FnOnce() -> anyhow::Result<i32>) -> ! {
    let _ = TOOL.set(name);
    let code = match body() {
        Ok(code) => code,
        Err(err) => {
            report(&one_line(&err));
            status_of(&err)
        }
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_status_survives_context() {
        let err = Err::<(), _>(exit_error(NOT_FOUND, "foo: command not found"))
            .context("starting foo")
            .unwrap_err();
        assert_eq!(status_of(&err), NOT_FOUND);
        assert_eq!(one_line(&err), "starting foo: foo: command not found");
    }

    #[test]
    fn os_error_numbers_are_dropped() {
        let err = anyhow::Error::new(std::io::Error::from_raw_os_error(2)).context("/x");
        assert_eq!(one_line(&err), "/x: No such file or directory");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain: text/é"), "plain: text/é");
        assert_eq!(
            printable("a\x1b[31mb\rc\nd\x07e\tf\x7fg\u{9b}h\u{202e}i"),
            "a\\e[31mb\\rc\\nd\\ae\\tf\\x7fg\\u{009b}h\\u{202e}i"
        );
        assert_eq!(shown(b"/x\xff\x1b\xc3\xa9"), "/x\\xff\\eé");
        let err = anyhow::anyhow!("bad\nname").context("opening");
        assert_eq!(one_line(&err), "opening: bad\\nname");
    }

    #[test]
    fn plain_errors_are_failures() {
        assert_eq!(status_of(&anyhow::anyhow!("boom")), FAILURE);
    }
}
