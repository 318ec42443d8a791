//! The tools' manual pages and shell completions, generated from their clap definitions so
//! that every option appears in both as soon as it exists (`make` writes them with the hidden
//! `--man` and `--completions SHELL`; see [`crate::cli::parse_args`]).
//!
//! clap_mangen renders NAME, DESCRIPTION and OPTIONS; this module adds what it lacks: a
//! SYNOPSIS that shows each option's argument, EXIT STATUS, ENVIRONMENT, ID MAPS, CONSOLE,
//! SYMBOLIC LINKS IN DIR, FILES, MESSAGES, the EXAMPLES (taken from the command's
//! `after_help`, lines `  COMMAND  what it does`) and SEE ALSO. MESSAGES is read from
//! docs/messages.md, the guide's table of every message, and ID MAPS, CONSOLE and SYMBOLIC
//! LINKS IN DIR from the sections of the guides of those names, when the tool is built: one
//! text for page and guide, so that neither can leave out what the other says.
//! It must not describe an option itself: that is the option's clap help, in the binary.

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
    write_commands(&cmd, out)?;
    write_exit_status(&name, out)?;
    write_environment(&name, out)?;
    if name != "inject" && name != "contain-oci" {
        write_guide_section("ID MAPS", MAPS_GUIDE, "Maps", out)?;
    }
    if name == "contain" {
        write_guide_section("CONSOLE", TERMINAL_GUIDE, "The console", out)?;
        write_guide_section(
            "SYMBOLIC LINKS IN DIR",
            SECURITY_GUIDE,
            "Symbolic links in DIR",
            out,
        )?;
    }
    write_files(&name, out)?;
    write_messages(&name, MESSAGES_GUIDE, out)?;
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
    // clap_complete panics when it cannot write (a reader that stopped early, `| head`): it
    // writes to memory, and the tool writes that out, reporting a failure as one line.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    out.write_all(&script)
        .map_err(|e| format!("writing the completions: {e}"))
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

/// A COMMANDS section for a tool with subcommands (contain-oci): each command's synopsis,
/// what it does, and its own options and arguments.
fn write_commands(cmd: &Command, out: &mut dyn Write) -> io::Result<()> {
    let commands: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .collect();
    if commands.is_empty() {
        return Ok(());
    }
    writeln!(out, ".SH COMMANDS")?;
    for sub in commands {
        let mut synopsis = vec![bold(sub.get_name())];
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set())
        {
            if !arg.is_positional() && arg.get_id() != "help" {
                synopsis.push(option_item(arg));
            }
        }
        for arg in sub.get_positionals() {
            let value = arg.get_value_names().and_then(|n| n.first()).map_or_else(
                || arg.get_id().to_string().to_uppercase(),
                |n| n.to_string(),
            );
            synopsis.push(if arg.is_required_set() {
                italic(&value)
            } else {
                format!("[{}]", italic(&value))
            });
        }
        writeln!(out, ".TP\n{}", synopsis.join(" "))?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}.", roff(&about.to_string()))?;
        }
        let args: Vec<&Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set() && a.get_id() != "help")
            .collect();
        if args.is_empty() {
            continue;
        }
        writeln!(out, ".RS")?;
        for arg in args {
            let name = match (arg.get_short(), arg.get_long()) {
                (Some(short), Some(long)) => format!("-{short}, --{long}"),
                (Some(short), None) => format!("-{short}"),
                (None, Some(long)) => format!("--{long}"),
                (None, None) => arg.get_value_names().and_then(|n| n.first()).map_or_else(
                    || arg.get_id().to_string().to_uppercase(),
                    |n| n.to_string(),
                ),
            };
            writeln!(out, ".TP\n{}", bold(&name))?;
            if let Some(help) = arg.get_help() {
                writeln!(out, "{}", roff(&help.to_string()))?;
            }
        }
        writeln!(out, ".RE")?;
    }
    Ok(())
}

fn write_exit_status(name: &str, out: &mut dyn Write) -> io::Result<()> {
    if name == "contain-oci" {
        writeln!(out, ".SH \"EXIT STATUS\"")?;
        writeln!(out, ".TP\n.B 0")?;
        writeln!(out, "The command did what it was asked.")?;
        writeln!(out, ".TP\n.B 1")?;
        writeln!(
            out,
            "It failed, as runc does: one line \\fBcontain\\-oci: \\fR\\fIwhat failed\\fR\\fB: \\fR\\fIwhy\\fR on \
             standard error (and in \\fB\\-\\-log\\fR); a failed create leaves no process and no \
             state behind."
        )?;
        writeln!(out, ".PP")?;
        return writeln!(
            out,
            "\\fBrun\\fR and \\fBexec\\fR without \\fB\\-\\-detach\\fR exit with the status of the \
             container's process instead, 128+N when it was killed by signal N."
        );
    }
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

/// The variables each tool reads, and what the command it runs gets.
fn write_environment(name: &str, out: &mut dyn Write) -> io::Result<()> {
    let variables: &[(&str, &str)] = match name {
        "pseudo" => &[
            (
                "SHELL",
                "The command run when no CMD is given (else /bin/sh).",
            ),
            ("PATH", "Where CMD is looked up."),
            (
                "(all)",
                "The command gets pseudo's whole environment, unchanged.",
            ),
        ],
        "contain" => &[
            (
                "TERM",
                "Passed on to init (linux if unset). Init gets no other variable of the \
                 caller's: its environment is container=contain, TERM and PATH (the \
                 directories /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin and \
                 /bin), and with --gui also \
                 DISPLAY=:0 and XAUTHORITY=/tmp/.X11-unix/Xauthority.",
            ),
            (
                "PATH",
                "Where contain finds the programs it starts outside the container: pasta, \
                 Xephyr, xpra, newuidmap and newgidmap.",
            ),
            (
                "DISPLAY, XAUTHORITY",
                "With --gui: the caller's X display, on which the container's display is \
                 shown, and its cookie file (default ~/.Xauthority, from HOME).",
            ),
            (
                "XDG_RUNTIME_DIR",
                "With --gui: where the display server's private directory is made while it \
                 starts, if the caller can write there and container root is the caller \
                 (else in /tmp); it is removed once the container has its socket.",
            ),
            (
                "CONTAIN_PID",
                "Set for the -o hook: the host PID of the container's init.",
            ),
            (
                "CONTAIN_REGISTRY",
                "An absolute path: the directory of the caller's names of running containers \
                 (--name, --list, inject NAME) in place of the default one (see FILES), as a \
                 test suite run as root uses to leave /run alone. Made mode 0700 if missing \
                 (its parent must exist) and held to the same rules; root's --list reads it in \
                 place of /run/contain.",
            ),
        ],
        "inject" => &[
            (
                "SHELL",
                "The command run when no CMD is given, if the container has it as an \
                 executable file (else /bin/sh).",
            ),
            (
                "CONTAIN_REGISTRY",
                "Where inject NAME looks the name up, as for contain (see contain(1)).",
            ),
            (
                "(all)",
                "CMD gets inject's environment, with PATH replaced by the container init's \
                 PATH (in which CMD is looked up) and container=contain; with --gui, the \
                 container's DISPLAY and XAUTHORITY replace the caller's.",
            ),
        ],
        "contain-oci" => &[
            (
                "XDG_RUNTIME_DIR",
                "Where a user's (and root of a user namespace's) containers' state goes when \
                 --root is not given: $XDG_RUNTIME_DIR/contain-oci.",
            ),
            (
                "(all)",
                "The container's process gets config.json's process.env alone; hooks get \
                 their own env alone.",
            ),
        ],
        _ => &[],
    };
    if variables.is_empty() {
        return Ok(());
    }
    writeln!(out, ".SH ENVIRONMENT")?;
    for (variable, what) in variables {
        writeln!(out, ".TP\n{}\n{}", bold(variable), roff(what))?;
    }
    Ok(())
}

/// docs/root-and-nested.md, whose section "Maps" is the maps' reference.
const MAPS_GUIDE: (&str, &str) = (
    "root-and-nested.md",
    include_str!("../../docs/root-and-nested.md"),
);

/// The section `heading` (`## heading`) of a guide as the man page's section `title`, so that
/// page and guide say the same: its paragraphs, bullet lists, and code blocks and tables as
/// they are.
fn write_guide_section(
    title: &str,
    (file, guide): (&str, &str),
    heading: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let marker = format!("## {heading}\n");
    let Some(start) = guide.find(&marker) else {
        return Ok(());
    };
    let body = &guide[start + marker.len()..];
    let body = body.find("\n## ").map_or(body, |end| &body[..end]);
    writeln!(out, ".SH \"{title}\"")?;
    // A paragraph or bullet item being gathered, with the request that starts it.
    let mut text: Option<(&str, String)> = None;
    let flush = |text: &mut Option<(&str, String)>, out: &mut dyn Write| -> io::Result<()> {
        if let Some((request, words)) = text.take() {
            writeln!(out, "{request}\n{}", markdown_to_roff(&words, file))?;
        }
        Ok(())
    };
    let mut verbatim = false;
    // HTML comments (notes to the guide's editors) are not shown.
    for line in body.lines().filter(|l| !l.starts_with("<!--")) {
        let fence = line.trim_start().starts_with("```");
        if verbatim || fence || line.starts_with('|') {
            flush(&mut text, out)?;
            match (fence, verbatim) {
                (true, false) => writeln!(out, ".PP\n.RS 4\n.nf")?,
                (true, true) => writeln!(out, ".fi\n.RE")?,
                (false, true) => writeln!(out, "\\&{}", roff(line).trim_start_matches("\\&"))?,
                // A table row, as it stands.
                (false, false) => writeln!(out, ".PP\n\\&{}", roff(line))?,
            }
            verbatim ^= fence;
        } else if line.trim().is_empty() {
            flush(&mut text, out)?;
        } else if let Some(item) = line.strip_prefix("- ") {
            flush(&mut text, out)?;
            text = Some((".IP \\(bu 2", item.trim().to_string()));
        } else {
            let (_, words) = text.get_or_insert((".PP", String::new()));
            if !words.is_empty() {
                words.push(' ');
            }
            words.push_str(line.trim());
        }
    }
    flush(&mut text, out)
}

/// docs/terminal.md, whose section "The console" describes contain's console.
const TERMINAL_GUIDE: (&str, &str) = ("terminal.md", include_str!("../../docs/terminal.md"));

/// docs/security.md, whose section "Symbolic links in DIR" says how contain follows them.
const SECURITY_GUIDE: (&str, &str) = ("security.md", include_str!("../../docs/security.md"));

/// docs/messages.md, whose table "What the messages mean" lists every message of the tools.
const MESSAGES_GUIDE: &str = include_str!("../../docs/messages.md");

/// The MESSAGES section: the rows of the guide's table that are `name`'s. A row is the tool's
/// whose message starts with `name:`, or that says `name` gives it too ("contain and inject
/// likewise"); a row of another command's message (`mount: ...` under pseudo) belongs to the
/// tool of the row before it.
fn write_messages(name: &str, guide: &str, out: &mut dyn Write) -> io::Result<()> {
    // contain-oci's messages have a table of their own.
    let heading = match name {
        "contain-oci" => "## contain-oci",
        _ => "## What the messages mean",
    };
    let Some(start) = guide.find(heading) else {
        return Ok(());
    };
    let section = &guide[start..];
    let section = section[3..]
        .find("\n## ")
        .map_or(section, |end| &section[..end + 3]);
    let mut owner = String::new();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells = table_cells(line);
        let [message, meaning] = &cells[..] else {
            continue;
        };
        let first = message.split('`').nth(1).unwrap_or_default();
        if let Some((tool, _)) = first.split_once(':') {
            if ["pseudo", "contain", "inject", "contain-oci"].contains(&tool) {
                owner = tool.to_string();
            }
        }
        let shared = message.contains("likewise") && message.contains(name);
        if owner == name || shared {
            rows.push((message.clone(), meaning.clone()));
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, ".SH MESSAGES")?;
    writeln!(
        out,
        "Each failure of {name} is one line on standard error, \\fB{name}: \\fR\\fIwhat \
         failed\\fR\\fB: \\fR\\fIwhy\\fR, with what it repeats of the input shown with control \
         characters escaped. The messages, with the exit status in parentheses, what they mean \
         and what to do:"
    )?;
    for (message, meaning) in rows {
        writeln!(
            out,
            ".TP\n{}\n{}",
            markdown_to_roff(&message, "messages.md"),
            markdown_to_roff(&meaning, "messages.md")
        )?;
    }
    Ok(())
}

/// The cells of a Markdown table row, `\|` kept as `|`.
fn table_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = line.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().unwrap().push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    if cells.last().is_some_and(|c| c.trim().is_empty()) {
        cells.pop();
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// A line of the guide's Markdown as roff: `code` in bold, a link as its text (followed by
/// the guide's name, for a link into a guide).
fn markdown_to_roff(text: &str, home: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    // [text](target) -> text
    while let Some(open) = rest.find('[') {
        let link = rest[open..]
            .find("](")
            .and_then(|mid| rest[open + mid..].find(')').map(|close| (mid, mid + close)));
        match link {
            Some((mid, close)) if !rest[open + 1..open + mid].contains('`') => {
                plain.push_str(&rest[..open]);
                plain.push_str(&rest[open + 1..open + mid]);
                // A guide of docs/ (`home`, the text's own, for an anchor alone) is named after it.
                let target = &rest[open + mid + 2..open + close];
                let file = target.split('#').next().unwrap_or_default();
                let file = if file.is_empty() { home } else { file };
                if file.ends_with(".md") && !file.contains('/') {
                    plain.push_str(&format!(" (docs/{file})"));
                }
                rest = &rest[open + close + 1..];
            }
            _ => {
                plain.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    plain.push_str(rest);
    let mut roffed = String::with_capacity(plain.len() + 16);
    for (i, piece) in plain.split('`').enumerate() {
        if i % 2 == 1 {
            roffed.push_str(&bold(piece));
        } else {
            for (j, part) in piece.split("**").enumerate() {
                if j % 2 == 1 {
                    roffed.push_str(&bold(part).replace("\\&", ""));
                } else {
                    roffed.push_str(&roff(part).replace("\\&", ""));
                }
            }
        }
    }
    if roffed.starts_with('.') || roffed.starts_with('\'') {
        roffed.insert_str(0, "\\&");
    }
    roffed
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
        "contain-oci" => vec![
            (
                "/run/contain-oci, $XDG_RUNTIME_DIR/contain-oci",
                "The default --root: one directory per container, holding state.json and, until \
                 start, start.sock.",
            ),
            (
                "/etc/containers/containers.conf.d/contain-oci.conf",
                "Tells podman where contain-oci is and that it writes JSON logs (make install).",
            ),
            (
                "/usr/bin/newuidmap, /usr/bin/newgidmap",
                "Write the maps of a user namespace that config.json asks for, where the caller \
                 may not (Debian package uidmap).",
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
                 runtime directory, else /tmp/contain-UID; root's is /run/contain; \
                 $CONTAIN_REGISTRY in place of any of them. Made mode 0700; one that is not the \
                 caller's alone, or a symbolic link, is refused.",
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
    writeln!(out, "{}", others.join(", "))?;
    // The guides of the source tree, by topic, those of this tool first.
    let guides: &[(&str, &str)] = &[
        (
            "daily-use.md",
            "The three tools, hooks, inject, stopping a container",
        ),
        (
            "root-and-nested.md",
            "ID maps, subordinate IDs, running as root, nested use",
        ),
        (
            "distributions.md",
            "Bootstrapping Debian or Void, booting its init",
        ),
        ("layers.md", "Layered roots and throw-away sandboxes"),
        ("gui.md", "GUI programs and desktops"),
        ("networking.md", "The network modes and published ports"),
        ("security.md", "Lock-down and the security model"),
        ("terminal.md", "The caller's terminal, the console, kill -9"),
        ("messages.md", "Every message and what to do"),
        ("engines.md", "contain-oci with podman and containerd"),
    ];
    let shown: Vec<_> = guides
        .iter()
        .filter(|(guide, _)| match name {
            "pseudo" => !["layers.md", "gui.md", "networking.md", "engines.md"].contains(guide),
            "inject" => ![
                "distributions.md",
                "layers.md",
                "networking.md",
                "engines.md",
            ]
            .contains(guide),
            "contain-oci" => ["engines.md", "security.md", "messages.md"].contains(guide),
            _ => *guide != "engines.md",
        })
        .collect();
    writeln!(
        out,
        ".PP\nThe guides in the docs directory of the source (README.md links them):"
    )?;
    for (guide, topic) in shown {
        writeln!(
            out,
            ".TP\n{}\n{}.",
            italic(&format!("docs/{guide}")),
            roff(topic)
        )?;
    }
    Ok(())
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

    fn messages_of(tool: &str) -> String {
        let mut out = Vec::new();
        write_messages(tool, MESSAGES_GUIDE, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_message_of_the_guide_is_in_a_manual_page() {
        let pages: Vec<String> = ["pseudo", "contain", "inject", "contain-oci"]
            .iter()
            .map(|tool| messages_of(tool))
            .collect();
        for tool_page in &pages {
            assert!(tool_page.starts_with(".SH MESSAGES\n"), "{tool_page}");
        }
        let table = &MESSAGES_GUIDE[MESSAGES_GUIDE.find("## What the messages mean").unwrap()..];
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| `")).collect();
        assert!(
            rows.len() > 30,
            "the guide's table shrank to {} rows",
            rows.len()
        );
        for row in rows {
            let message = markdown_to_roff(&table_cells(row)[0], "messages.md");
            assert!(
                pages.iter().any(|p| p.contains(&message)),
                "no manual page has {message:?}"
            );
        }
        // Each message is on the page of its own tool, and shared ones on each.
        assert!(pages[0].contains("\\fBpseudo: CMD: command not found\\fR"));
        assert!(!pages[0].contains("\\fBinject: PID: no such process"));
        assert!(pages[1].contains("\\fBcontain: \\-\\-overlay STATE: No such file"));
        assert!(pages[2].contains("\\fBinject: PID: no such process"));
        assert!(pages[2].contains("unknown shell"), "{}", pages[2]);
        assert!(pages[3].contains("does not exist\\fR (1)"), "{}", pages[3]);
        assert!(!pages[3].contains("\\fBpseudo: CMD"), "{}", pages[3]);
    }

    #[test]
    fn the_maps_section_is_the_guides() {
        let mut out = Vec::new();
        write_guide_section("ID MAPS", MAPS_GUIDE, "Maps", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(".SH \"ID MAPS\"\n.PP\nA map is \\fBSTART:LOWER:COUNT"));
        assert!(text.contains(".IP \\(bu 2\nAs root: "), "{text}");
        assert!(
            text.contains("(see Nested (docs/root\\-and\\-nested.md))"),
            "{text}"
        );
        assert!(!text.contains("## "), "{text}");
        // Each section the pages take from a guide is still there, under its name.
        for (guide, heading) in [
            (TERMINAL_GUIDE, "The console"),
            (SECURITY_GUIDE, "Symbolic links in DIR"),
        ] {
            let mut out = Vec::new();
            write_guide_section("X", guide, heading, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains(".PP\n"),
                "docs/{}: no section {heading:?}",
                guide.0
            );
        }
    }

    #[test]
    fn guide_sections_keep_lists_code_and_tables() {
        let guide = "# T\n\n## S\n\nOne\ntwo `x`.\n\n- a\n  b\n- c\n\n```sh\n.x -y\n\n  z\n```\n\n| a | b |\n\n## Next\n\nno\n";
        let mut out = Vec::new();
        write_guide_section("S", ("t.md", guide), "S", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ".SH \"S\"\n.PP\nOne two \\fBx\\fR.\n.IP \\(bu 2\na b\n.IP \\(bu 2\nc\n\
             .PP\n.RS 4\n.nf\n\\&.x \\-y\n\\&\n\\&  z\n.fi\n.RE\n.PP\n\\&| a | b |\n"
        );
    }

    #[test]
    fn markdown_cells_become_roff() {
        assert_eq!(
            table_cells(r"| `a \| b` (125) | see [Maps](x.md#maps), `-u` |"),
            ["`a | b` (125)", "see [Maps](x.md#maps), `-u`"]
        );
        assert_eq!(
            markdown_to_roff("see [Maps](x.md#maps), `-u MAP` or [a]", "x.md"),
            "see Maps (docs/x.md), \\fB\\-u MAP\\fR or [a]"
        );
        assert_eq!(markdown_to_roff(".x `y`", "x.md"), "\\&.x \\fBy\\fR");
        assert_eq!(markdown_to_roff("**Why.** Be", "x.md"), "\\fBWhy.\\fR Be");
    }

    #[test]
    fn environment_and_see_also_name_the_tools_variables_and_guides() {
        let mut out = Vec::new();
        write_environment("contain", &mut out).unwrap();
        write_see_also("contain", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for expected in [
            "CONTAIN_PID",
            "XAUTHORITY",
            "docs/layers.md",
            "\\fBinject\\fR(1)",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
    }
}
