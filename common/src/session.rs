//! Keeping a command off the caller's terminal and process group.
//!
//! A process that shares its caller's session can reach back through it: ioctl(TIOCSTI) on the
//! caller's terminal types commands the caller's shell runs after the tool exits (bubblewrap's
//! CVE-2017-5226), TIOCLINUX pastes into a virtual console, tcsetpgrp takes the terminal from
//! the shell, and `kill 0` signals every process of the caller's process group: the shell,
//! and the rest of its pipeline.
//!
//! The kernel allows TIOCSTI and TIOCLINUX only on the caller's own controlling terminal
//! (unless it holds CAP_SYS_ADMIN in the initial user namespace, which nothing in our
//! namespaces has), and `kill 0` reaches only the caller's own process group. So every command
//! the tools run starts a session of its own (which is also a process group of its own), and
//! nothing it does to a terminal or a group can reach the caller's. This is the approach of
//! the kernel's own rules, for every ioctl at once, rather than a seccomp filter on the ioctls
//! known today (which would leave `kill 0`, and cost every system call of a `tar | pseudo
//! tar -x` pipeline a filter run).
//!
//! A new session has no controlling terminal: a shell would have no job control, and ^C on
//! the caller's terminal would go to the tool, not to the command. Nor may the command get
//! the caller's terminal as stdin, stdout or stderr: a process it leaves behind would keep
//! reading the caller's keys (a password typed after the tool returned) and writing to the
//! terminal, with no job control to stop it. So whenever one of stdin, stdout and stderr is a
//! terminal, the command gets a pty of its own as its controlling terminal, in place of each
//! of them that is a terminal, relayed to and from the caller's terminal (in raw mode while
//! input is relayed), as sudo's use_pty and contain's console do: ^C, ^Z and job control
//! happen on that pty, TIOCSTI there types only into the command's own input, and once the
//! tool has returned, the pty is hung up for whatever is left of the command. Pipes and files
//! stay as the caller passed them, with no relay and no copy in between. When stdin is no
//! terminal, the terminal's ^C and ^\ go to the tool alone, which passes them on.
//!
//! It must not leave a command in the caller's session or process group, whatever the tool and
//! whatever its stdin.

use crate::console::Console;
use crate::supervise::{Signal, Supervisor};
use anyhow::{Context, Result};
use nix::unistd::{isatty, Pid};
use std::os::fd::AsFd;

/// What a terminal sends to its whole foreground process group when a key is typed: the
/// tool, now alone in that group, passes them on to the command's group (see
/// [`Supervisor::passing_to_group`]).
pub const TERMINAL_SIGNALS: [Signal; 2] = [Signal::SIGINT, Signal::SIGQUIT];

/// Where a command's session gets its terminal from.
pub enum Session {
    /// A pty of the tool's, relayed to the caller's terminal.
    Pty(Console),
    /// No controlling terminal; the caller's descriptors as they are.
    Detached,
}

impl Session {
    /// A pty when any of stdin, stdout and stderr is a terminal, else a detached session.
    /// Opens the pty in the caller's current mount namespace (its /dev/ptmx). Fails if the pty
    /// cannot be opened: the caller's terminal itself never goes to the command.
    pub fn for_caller() -> Result<Session> {
        let stdin = std::io::stdin();
        let terminal = |fd: std::os::fd::BorrowedFd<'_>| isatty(fd).unwrap_or(false);
        if terminal(stdin.as_fd())
            || terminal(std::io::stdout().as_fd())
            || terminal(std::io::stderr().as_fd())
        {
            Ok(Session::Pty(Console::for_terminals().context(
                "opening a pty for the command, which must not get the caller's terminal",
            )?))
        } else {
            Ok(Session::Detached)
        }
    }

    /// In the command's process, before exec: starts its session, and with a pty makes the
    /// pty its controlling terminal and puts it in place of each of stdin, stdout and stderr
    /// that is a terminal.
    pub fn enter(&self) -> Result<()> {
        match self {
            Session::Pty(console) => console.attach_in_place_of_terminals(),
            Session::Detached => {
                nix::unistd::setsid().context("starting a session for the command")?;
                Ok(())
            }
        }
    }

    /// In the tool: waits for `child`, relaying the pty if there is one, and returns its
    /// status.
    pub fn wait(&self, supervisor: &Supervisor, child: Pid) -> Result<i32> {
        match self {
            Session::Pty(console) => console.relay(supervisor, child),
            Session::Detached => supervisor.wait(child),
        }
    }
}
