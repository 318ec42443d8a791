//! pseudo: run a command as root in a new user namespace, without privilege.

use clap::Parser;
use common::errors::{self, parse_args};
use common::idmap::{parse_map, IdMap, IdMaps};
use common::ns::Namespace;
use common::process::Exec;
use common::supervise::Supervisor;
use common::userns::NsChild;
use common::supervise::Signal::{SIGHUP, SIGTERM, SIGUSR1, SIGUSR2};
use std::ffi::OsString;

/// Run a command as root in a new user namespace, like sudo but unprivileged.
///
/// Container root is the caller; container IDs 1, 2, ... are the caller's subordinate ranges
/// from /etc/subuid and /etc/subgid (mapped by shadow's newuidmap/newgidmap). Files created as
/// any of them land on the host with the mapped owners.
#[derive(Parser)]
#[command(version, about, long_about, after_help = EXAMPLES)]
struct Args {
    /// UID map START:LOWER:COUNT[,...] (container start, host start, length)
    #[arg(short = 'u', value_name = "MAP", value_parser = parse_map)]
    uid_map: Option<IdMap>,
    /// GID map START:LOWER:COUNT[,...]
    #[arg(short = 'g', value_name = "MAP", value_parser = parse_map)]
    gid_map: Option<IdMap>,
    /// Also create a mount namespace, so the command can mount (e.g. /proc in a chroot)
    /// without touching the host's mounts
    #[arg(short = 'm', long = "mount")]
    mount: bool,
    /// Command and arguments (default: $SHELL, else /bin/sh)
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

const EXAMPLES: &str = "Examples:
  pseudo id -u                               prints 0
  tar -c -C src . | pseudo tar -x -C dest    unpack with owners mapped
  pseudo -m debootstrap bookworm dir URL     bootstrap a distribution";

fn main() {
    errors::run_main("pseudo", || {
        let args: Args = parse_args();
        let maps = IdMaps::from_args(args.uid_map, args.gid_map)?;
        let command = if args.command.is_empty() {
            vec![std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/bin/sh".into())]
        } else {
            args.command
        };
        let exec = Exec::inheriting(&command)?;
        let extra: &[Namespace] = if args.mount { &[Namespace::Mount] } else { &[] };

        // ^C and ^\\ reach the command from the terminal itself: passing them on would double them.
        let supervisor = Supervisor::with_forwarded(&[SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])?;
        let child = NsChild::spawn(extra, &maps, |_| Err(exec.exec()))?;
        let pid = child.release()?;
        supervisor.wait(pid)
    })
}
