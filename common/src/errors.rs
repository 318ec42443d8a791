//! One-line errors and the exit statuses the tools promise.
//!
//! Every failure leaves a tool as `tool: what failed: why` on stderr and one of the statuses
//! below; the command's own status passes through untouched otherwise.

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

/// Parses the command line with clap, turning usage errors into one line and [`FAILURE`].
/// For packagers (`make` uses them), `--man` alone prints the tool's manual page (roff) and
/// `--completions SHELL` its completion script for bash, zsh or fish, instead.
pub fn parse_args<T: clap::Parser>() -> T {
    parse_args_failing_with(FAILURE)
}

/// [`parse_args`] for a tool whose usage errors end with status `failure` (contain-oci: 1,
/// as runc).
pub fn parse_args_failing_with<T: clap::Parser>(failure: i32) -> T {
    let args: Vec<_> = std::env::args_os().skip(1).take(3).collect();
    let generated = match args.as_slice() {
        [flag] if flag == "--man" => Some(
            crate::manual::write_man(T::command(), &mut std::io::stdout().lock())
                .map_err(|e| format!("writing the manual page: {e}")),
        ),
        [flag, shell] if flag == "--completions" => Some(crate::manual::write_completions(
            T::command(),
            &shell.to_string_lossy(),
            &mut std::io::stdout().lock(),
        )),
        _ => None,
    };
    if let Some(result) = generated {
        let code = match result {
            Ok(()) => 0,
            Err(e) if e.ends_with("Broken pipe") => 0,
            Err(e) => {
                report(&e);
                failure
            }
        };
        std::process::exit(code);
    }
    match T::try_parse() {
        Ok(args) => args,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                std::process::exit(0);
            }
            report(&format!(
                "{} (see --help)",
                usage_error_line(&escaped_input(err))
            ));
            std::process::exit(failure)
        }
    }
}

/// clap's usage error as text, with each value it names from the command line (an unknown
/// option, a value refused) escaped, so that a newline in an argument cannot pass for one of
/// clap's. (clap itself drops escape sequences from what it prints; what a value parser's own
/// message echoes is escaped by [`report`].)
fn escaped_input(mut err: clap::Error) -> String {
    use clap::error::ContextValue;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // clap holds arguments as lossy UTF-8: show the argument itself, bytes and all, if it
    // is one of ours.
    let escaped = |value: &String| -> String {
        match args.iter().find(|a| a.to_string_lossy() == value.as_str()) {
            Some(arg) => shown_os(arg),
            None => printable(value).into_owned(),
        }
    };
    let changed = |value: &String| escaped(value) != *value;
    let replaced: Vec<_> = err
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::String(s) if changed(s) => Some((kind, ContextValue::String(escaped(s)))),
            ContextValue::Strings(list) if list.iter().any(changed) => Some((
                kind,
                ContextValue::Strings(list.iter().map(escaped).collect()),
            )),
            _ => None,
        })
        .collect();
    for (kind, value) in replaced {
        err.insert(kind, value);
    }
    err.to_string()
}

/// clap's usage error as one line: its first paragraph (the error, with what it names on the
/// following lines: the missing argument, the possible values), without the usage summary.
fn usage_error_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect::<Vec<_>>()
        .join(" ");
    match line.strip_prefix("error: ") {
        Some(rest) => rest.to_string(),
        None if line.is_empty() => "invalid arguments".to_string(),
        None => line,
    }
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
    fn usage_errors_keep_what_they_name() {
        let missing = "error: the following required arguments were not provided:\n  <PID>\n\n\
                       Usage: inject <PID> [CMD]...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error_line(missing),
            "the following required arguments were not provided: <PID>"
        );
        let value = "error: invalid value 'x' for '--net <MODE>'\n  [possible values: private, \
                     host, pasta]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error_line(value),
            "invalid value 'x' for '--net <MODE>' [possible values: private, host, pasta]"
        );
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
    fn usage_errors_escape_what_the_input_held() {
        #[derive(clap::Parser, Debug)]
        struct Args {
            #[arg(short = 'n', value_parser = clap::value_parser!(u32))]
            number: Option<u32>,
        }
        use clap::Parser;
        for arg in ["-n1\x1b[2J\r\n\x07", "--bad\nline\x1b"] {
            let err = Args::try_parse_from(["t", arg]).unwrap_err();
            let line = usage_error_line(&escaped_input(err));
            assert!(!line.chars().any(needs_escape), "{line:?}");
            assert!(line.contains("\\e"), "{line:?}");
        }
    }

    #[test]
    fn plain_errors_are_failures() {
        assert_eq!(status_of(&anyhow::anyhow!("boom")), FAILURE);
    }
}
