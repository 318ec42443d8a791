//! inject: run a command inside a running container.

use clap::Parser;
use common::caps::{parse_user, User};
use common::cli::parse_args;
use common::enter::{refuse_setid, Injection};
use common::environment::{self, parse_assignment, Assignment};
use common::errors;
use common::registry;
use std::ffi::OsString;
use std::path::PathBuf;

/// Run a command inside a running container, as its root, without privilege.
///
/// PID is the contain supervisor (`contain --list` shows them, and `pgrep -n contain` finds the
/// newest one) or the container's init (its PID as the host's ps shows it); NAME is the name of
/// a container started with `contain --name NAME`. inject joins the container's user namespace, then
/// its cgroup, IPC, network, PID, time, UTS and mount namespaces, becomes container root (uid
/// and gid 0), and runs CMD (default: $SHELL if the container has it, else /bin/sh) in the
/// container's root directory, in /. CMD is a process of the container: it sees the container's /proc and
/// hostname, and dies with the container, or with inject if inject is killed.
///
/// CMD gets inject's stdin, stdout and stderr, and the container's environment (its init's, as
/// contain set it: container=contain, PATH, in which CMD is looked up, and the variables
/// given to contain), with inject's TERM, HOME and USER of the user CMD runs as (from the
/// container's /etc/passwd), and the variables of -e and --env-file; nothing else of inject's
/// environment. inject exits with CMD's status (128+N if
/// it died of signal N) and passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
/// SIGPWR on to it. CMD runs in a session of its own, so it can neither type into your
/// terminal nor signal your shell's process group; and it never gets your terminal: those of
/// stdin, stdout and stderr that are a terminal are a pty of inject's instead, relayed to and
/// from yours while inject runs and hung up when it returns, so nothing CMD leaves running
/// inside reads your keys or writes to your terminal afterwards. Pipes and files are passed
/// as they are. The caller must own the container (root may enter any); inject refuses to
/// run set-user-ID.
///
/// CMD never holds more than the container's init: inject gives it init's capability bounding
/// set, at most init's capabilities, and init's no_new_privs.
#[derive(Parser)]
#[command(version, about, long_about, after_help = EXAMPLES)]
struct Args {
    /// Run CMD as this user and group inside instead of root, numeric, GID defaulting to UID;
    /// it gets only the capabilities the container's init was given as ambient ones, and its
    /// bounding set holds no others: a set-user-ID root program gives it no more
    #[arg(long = "user", value_name = "UID[:GID]", value_parser = parse_user)]
    user: Option<User>,
    /// Set variable NAME in CMD's environment (repeatable); without =VALUE, to its value in
    /// inject's own environment (left out if it has none)
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]", value_parser = parse_assignment)]
    env: Vec<Assignment>,
    /// Set the variables of FILE, one NAME=VALUE (or NAME, as -e) a line; blank lines and lines
    /// starting with # are skipped, VALUE is taken literally (repeatable; -e wins)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// The contain supervisor or the container's init, or the NAME of a container of yours
    /// (contain --name)
    #[arg(value_name = "PID|NAME")]
    target: String,
    /// Command and arguments (default: $SHELL if the container has it, else /bin/sh)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

const EXAMPLES: &str = "Examples:
  inject web bash                    a shell in the container named web
  inject $(pgrep -n contain) bash    a shell in the newest container
  inject 4242 ps                     the container's processes, as it sees them
  inject 4242 cat /etc/os-release    read a file inside
  inject --user 1000 4242 id         run as uid and gid 1000 inside
  inject -e DEBUG=1 -e LANG 4242 app  with DEBUG=1 and the caller's LANG";

fn main() {
    errors::run_main("inject", || {
        refuse_setid()?;
        let args: Args = parse_args();
        Injection {
            target: registry::find_target(&args.target)?,
            command: args.command,
            user: args.user,
            env: environment::from_options(&args.env_file, &args.env)?,
        }
        .run()
    })
}
