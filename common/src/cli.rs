//! The command line of every tool: parsing it with clap into the tool's options, with usage
//! errors as one line and FAILURE; and, for packagers, `--man` and `--completions SHELL`, which
//! print what manual.rs generates from the same clap definition instead of running the tool.
//!
//! It sits above errors (the messages and statuses) and manual (the pages, which name errors'
//! statuses), so that the imports run one way: cli -> manual -> errors. The binaries call
//! [`parse_args`] first thing in `main`. It must not do anything but read the command line:
//! what the options mean is each module's business.

use crate::errors::{printable, report, shown_os, FAILURE};
use crate::manual;

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
            manual::write_man(T::command(), &mut std::io::stdout().lock())
                .map_err(|e| format!("writing the manual page: {e}")),
        ),
        [flag, shell] if flag == "--completions" => Some(manual::write_completions(
            T::command(),
            &shell.to_string_lossy(),
            &mut std::io::stdout().lock(),
        )),
        _ => None,
    };
    if let Some(result) = generated {
        let code = match result {
            Ok(()) => 0,
            // A reader that stopped early (`| head`) is not a failure.
            Err(e) if e.contains("Broken pipe") => 0,
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
            assert_eq!(printable(&line), line, "{line:?}");
            assert!(line.contains("\\e"), "{line:?}");
        }
    }
}
