//! inject: run a command inside a running container.

use clap::Parser;
use common::caps::{parse_user, User};
use common::enter::{refuse_setid, Injection};
use common::errors::{self, parse_args};
use std::ffi::OsString;

/// Run a command inside a running container, as its root, without privilege.
///
/// PID is the contain supervisor (`pgrep -n contain` finds the newest one) or the container's
/// init (its PID as the host's ps shows it). inject joins the container's user namespace, then
/// its cgroup, IPC, network, PID, time, UTS and mount namespaces, becomes container root (uid
/// and gid 0), and runs CMD (default: $SHELL if the container has it, else /bin/sh) in the
/// container's root directory, in /. CMD is a process of the container: it sees the container's /proc and
/// hostname, and dies with the container, or with inject if inject is killed.
///
/// CMD gets inject's stdin, stdout, stderr and environment, with container=contain and the
/// container init's PATH, in which CMD is looked up. inject exits with CMD's status (128+N if
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
    /// The contain supervisor or the container's init
    #[arg(value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pid: i32,
    /// Command and arguments (default: $SHELL if the container has it, else /bin/sh)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

const EXAMPLES: &str = "Examples:
  inject $(pgrep -n contain) bash    a shell in the newest container
  inject 4242 ps                     the container's processes, as it sees them
  inject 4242 cat /etc/os-release    read a file inside
  inject --user 1000 4242 id         run as uid and gid 1000 inside";

fn main() {
    errors::run_main("inject", || {
        refuse_setid()?;
        let args: Args = parse_args();
        Injection {
            target: args.pid,
            command: args.command,
            user: args.user,
        }
        .run()
    })
}
