//! The tools' manual pages and shell completions, generated from their clap definitions so
//! that every option appears in both as soon as it exists (`make` writes them with the hidden
//! `--man` and `--completions SHELL`; see [`crate::errors::parse_args`]).
//!
//! clap_mangen renders NAME, DESCRIPTION and OPTIONS; this module adds what it lacks: a
//! SYNOPSIS that shows each option's argument, the EXAMPLES (taken from the command's
//! `after_help`, lines `  COMMAND  what it does`), EXIT STATUS and FILES.

use crate::errors::{FAILURE, NOT_EXECUTABLE, NOT_FOUND};
use clap::{Arg, ArgAction, Command};
use std::io::{self, Write};

/// Writes the section 1 manual page of `cmd` (roff) to `out`.
pub fn write_man(cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd;
    cmd.build();
    let name = cmd.get_name().to_string();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let examples = cmd.get_after_help().map(|h| h.to_string());
    let page = clap_mangen::Man::new(cmd.clone());
    // clap_mangen starts each part with the same two lines defining \*(Aq: write them once.
    let part = |render: &dyn Fn(&mut dyn Write) -> io::Result<()>| -> io::Result<String> {
        let mut text = Vec::new();
        render(&mut text)?;
        let text = String::from_utf8_lossy(&text).into_owned();
        Ok(text
            .lines()
            .filter(|l| !l.starts_with(".ie \\n(.g .ds Aq") && !l.starts_with(".el .ds Aq"))
            .map(|l| format!("{l}\n"))
            .collect())
    };
    writeln!(out, ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '")?;
    writeln!(
        out,
        ".TH {} 1 \"\" \"{name} {version}\" \"User Commands\"",
        name.to_uppercase()
    )?;
    out.write_all(part(&|w| page.render_name_section(w))?.as_bytes())?;
    write_synopsis(&cmd, out)?;
    out.write_all(part(&|w| page.render_description_section(w))?.as_bytes())?;
    out.write_all(part(&|w| page.render_options_section(w))?.as_bytes())?;
    write_exit_status(&name, out)?;
    write_files(&name, out)?;
    if let Some(examples) = examples {
        write_examples(&examples, out)?;
    }
    write_see_also(&name, out)
}

/// Writes the completion script of `cmd` for `shell` (bash, zsh, fish, elvish, powershell).
pub fn write_completions(cmd: Command, shell: &str, out: &mut dyn Write) -> Result<(), String> {
    let shell: clap_complete::Shell = shell
        .parse()
        .map_err(|_| format!("--completions: unknown shell '{shell}' (bash, zsh or fish)"))?;
    let mut cmd = cmd;
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// Roff text: backslashes and hyphens escaped, and no line starting with a control character.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", roff(text))
}

fn italic(text: &str) -> String {
    format!("\\fI{}\\fR", roff(text))
}

/// `tool [-c] [-u MAP] [--cap-drop LIST]... DIR [CMD [ARG]...]`, one item per line so that
/// man breaks the synopsis only between items.
fn write_synopsis(cmd: &Command, out: &mut dyn Write) -> io::Result<()> {
    let mut items = Vec::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if !arg.is_positional() {
            items.push(option_item(arg));
        }
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let value = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().to_string(), |n| n.to_string());
        let many = matches!(arg.get_action(), ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        items.push(match (arg.is_required_set(), many) {
            (true, _) => italic(&value),
            // The trailing command: its arguments follow it.
            (false, true) => format!("[{} [{}]...]", italic(&value), italic("ARG")),
            (false, false) => format!("[{}]", italic(&value)),
        });
    }
    writeln!(out, ".SH SYNOPSIS")?;
    writeln!(out, ".nh")?;
    writeln!(out, ".ad l")?;
    writeln!(out, "{}", bold(cmd.get_name()))?;
    for item in items {
        writeln!(out, "{item}")?;
    }
    writeln!(out, ".ad")?;
    writeln!(out, ".hy")
}

/// `[-u MAP]`, `[--cap-drop LIST]...`, `[-c]`: the short name if there is one, else the long.
fn option_item(arg: &Arg) -> String {
    let flag = match (arg.get_short(), arg.get_long()) {
        (Some(short), _) => format!("-{short}"),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => arg.get_id().to_string(),
    };
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            ArgAction::SetTrue
                | ArgAction::SetFalse
                | ArgAction::Count
                | ArgAction::Help
                | ArgAction::HelpShort
                | ArgAction::HelpLong
                | ArgAction::Version
        );
    let mut item = format!("[{}", bold(&flag));
    if takes_value {
        let value = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(
                || arg.get_id().to_string().to_uppercase(),
                |n| n.to_string(),
            );
        item.push(' ');
        item.push_str(&italic(&value));
    }
    item.push(']');
    if matches!(arg.get_action(), ArgAction::Append) {
        item.push_str("...");
    }
    item
}

fn write_exit_status(name: &str, out: &mut dyn Write) -> io::Result<()> {
    let what = "CMD";
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    writeln!(
        out,
        "{name} exits with the exit status of CMD{}, or with 128+N when it was killed by \
         signal N.",
        if name == "contain" {
            " (the container's init)"
        } else {
            ""
        }
    )?;
    if name == "contain" {
        writeln!(
            out,
            "A halt or power\\-off inside the container ends {name} with 0; a reboot boots the \
             container again."
        )?;
    }
    writeln!(out, ".TP\n.B {FAILURE}")?;
    writeln!(
        out,
        "{name} itself failed (a bad option, a refused namespace, a helper that failed); \
         one line \\fB{name}: \\fR\\fIwhat failed\\fR\\fB: \\fR\\fIwhy\\fR on standard error \
         says why. {what} has not run and nothing is left running."
    )?;
    writeln!(out, ".TP\n.B {NOT_EXECUTABLE}")?;
    writeln!(out, "CMD exists but cannot be executed.")?;
    writeln!(out, ".TP\n.B {NOT_FOUND}")?;
    writeln!(out, "CMD was not found.")
}

fn write_files(name: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, ".SH FILES")?;
    let id_maps = [
        (
            "/etc/subuid",
            "The caller's subordinate user ID ranges, in file order: the default uid map gives \
             them to container uids 1, 2, ... (see subuid(5)); root's own ranges, if any, to \
             container uids 0, 1, 2, ... when root runs the tool. Every user's ranges are IDs \
             root's default block leaves out.",
        ),
        (
            "/etc/subgid",
            "The caller's subordinate group ID ranges, for the default gid map (see subgid(5)), \
             as /etc/subuid's for uids.",
        ),
        (
            "/etc/passwd",
            "The caller's user name, by which /etc/subuid and /etc/subgid name their ranges; \
             its uids, as those of /etc/group's gids, are IDs root's default block leaves out \
             (accounts known only to a network directory are not seen: give root ranges of \
             its own then).",
        ),
        (
            "/etc/group",
            "Its gids are IDs root's default block leaves out.",
        ),
        (
            "/usr/bin/newuidmap, /usr/bin/newgidmap",
            "Write maps that name subordinate IDs (Debian package uidmap).",
        ),
    ];
    let files: Vec<(&str, &str)> = match name {
        "inject" => vec![
            (
                "/proc/PID/ns/*",
                "The namespaces of the container's init that inject joins.",
            ),
            (
                "/proc/PID/status, /proc/PID/environ",
                "The init's capabilities and no_new_privs, which bound CMD's, and its \
                 environment, which CMD starts from.",
            ),
            (
                "$XDG_RUNTIME_DIR/contain, /tmp/contain-UID, /run/contain",
                "The names of the caller's running containers (root's: /run/contain), by which \
                 inject NAME finds one (see contain(1)).",
            ),
        ],
        "contain" => {
            let mut files = id_maps.to_vec();
            files.push((
                "DIR/proc, DIR/sys, DIR/dev",
                "Created if missing; contain mounts the container's /proc, /sys and /dev there.",
            ));
            files.push((
                "/sys/fs/cgroup (or /sys/fs/cgroup/unified), /proc/self/cgroup",
                "The cgroup v2 hierarchy and contain's cgroup in it. For a systemd init or a \
                 limit, contain uses that cgroup when it is delegated to the caller (its \
                 children supervisor and container) or, as root in the root cgroup, makes \
                 contain-PID; it removes them when the container ends.",
            ));
            files.push((
                "/sys/kernel/cgroup/delegate",
                "The files of a cgroup that contain gives to container root with the directory.",
            ));
            files.push((
                "$XDG_RUNTIME_DIR/contain, /tmp/contain-UID, /run/contain",
                "The caller's running containers, one entry each (named after --name, or @PID), \
                 for --list and inject NAME: $XDG_RUNTIME_DIR/contain when the caller has a \
                 runtime directory, else /tmp/contain-UID; root's is /run/contain. Made mode \
                 0700; one that is not the caller's alone, or a symbolic link, is refused.",
            ));
            files
        }
        _ => id_maps.to_vec(),
    };
    for (path, what) in files {
        writeln!(out, ".TP\n{}\n{}", italic(path), roff(what))?;
    }
    Ok(())
}

/// The `after_help` text `Examples:\n  COMMAND  what it does\n...` as an EXAMPLES section.
fn write_examples(text: &str, out: &mut dyn Write) -> io::Result<()> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_end().ends_with(':'))
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(out, ".SH EXAMPLES")?;
    for line in lines {
        let line = line.trim();
        let (command, what) = match line.find("  ") {
            Some(at) => (line[..at].trim_end(), line[at..].trim()),
            None => (line, ""),
        };
        writeln!(out, ".TP")?;
        writeln!(out, "{}", bold(command))?;
        if what.is_empty() {
            writeln!(out, ".br")?;
        } else {
            let mut what = what.to_string();
            if let Some(first) = what.get(..1) {
                what.replace_range(..1, &first.to_uppercase());
            }
            writeln!(out, "{}.", roff(&what))?;
        }
    }
    Ok(())
}

fn write_see_also(name: &str, out: &mut dyn Write) -> io::Result<()> {
    let others: Vec<String> = ["contain", "inject", "pseudo"]
        .iter()
        .filter(|&&tool| tool != name)
        .map(|tool| format!("\\fB{tool}\\fR(1)"))
        .chain(
            [
                "newuidmap(1)",
                "subuid(5)",
                "user_namespaces(7)",
                "unshare(1)",
            ]
            .iter()
            .map(|page| {
                let (name, section) = page.split_once('(').unwrap_or((page, ""));
                format!("\\fB{name}\\fR({section}")
            }),
        )
        .collect();
    writeln!(out, ".SH \"SEE ALSO\"")?;
    writeln!(out, "{}", others.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Command {
        Command::new("tool")
            .version("1.0")
            .about("Does a thing")
            .after_help("Examples:\n  tool -u 0:1:1 DIR   run in DIR\n  tool DIR ls")
            .arg(Arg::new("map").short('u').value_name("MAP"))
            .arg(Arg::new("quiet").short('q').action(ArgAction::SetTrue))
            .arg(
                Arg::new("drop")
                    .long("cap-drop")
                    .value_name("LIST")
                    .action(ArgAction::Append),
            )
            .arg(Arg::new("dir").value_name("DIR").required(true))
            .arg(
                Arg::new("cmd")
                    .value_name("CMD")
                    .num_args(1..)
                    .trailing_var_arg(true),
            )
    }

    fn page() -> String {
        let mut out = Vec::new();
        write_man(command(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn synopsis_shows_option_arguments() {
        let page = page();
        let synopsis = &page[page.find(".SH SYNOPSIS").unwrap()..page.find(".SH DESC").unwrap()];
        assert!(
            synopsis.contains("[\\fB\\-u\\fR \\fIMAP\\fR]"),
            "{synopsis}"
        );
        assert!(synopsis.contains("[\\fB\\-q\\fR]\n"), "{synopsis}");
        assert!(synopsis.contains("[\\fB\\-\\-cap\\-drop\\fR \\fILIST\\fR]..."));
        assert!(synopsis.contains("\\fIDIR\\fR\n[\\fICMD\\fR [\\fIARG\\fR]...]"));
    }

    #[test]
    fn examples_exit_status_and_files_are_sections() {
        let page = page();
        for section in [
            ".SH EXAMPLES",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
            "/etc/subuid",
        ] {
            assert!(page.contains(section), "{section} missing:\n{page}");
        }
        assert!(page.contains(".TP\n\\fBtool \\-u 0:1:1 DIR\\fR\nRun in DIR.\n"));
        assert!(page.contains(".TP\n\\fBtool DIR ls\\fR\n.br\n"));
        assert!(!page.contains("EXTRA"));
    }

    #[test]
    fn completions_name_the_options() {
        let mut out = Vec::new();
        write_completions(command(), "bash", &mut out).unwrap();
        let script = String::from_utf8(out).unwrap();
        assert!(script.contains("--cap-drop"));
        assert!(script.contains("complete -F"));
        assert!(write_completions(command(), "tcsh", &mut Vec::new()).is_err());
    }
}
