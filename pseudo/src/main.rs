//! pseudo: run a command as root in a new user namespace, without privilege.

use clap::Parser;
use common::chroot;
use common::cli::parse_args;
use common::errors;
use common::idmap::{parse_map, IdMap, IdMaps};
use common::mount;
use common::ns::Namespace;
use common::process::Exec;
use common::session::{Session, TERMINAL_SIGNALS};
use common::supervise::{Supervisor, FORWARDED};
use common::userns::NsChild;
use std::ffi::OsString;

/// Run a command as root in a new user namespace, like sudo but unprivileged.
///
/// Run by a user, container root is the caller; container IDs 1, 2, ... are the caller's
/// subordinate ranges from /etc/subuid and /etc/subgid (mapped by shadow's
/// newuidmap/newgidmap). Files created as any of them land on the host with the mapped owners.
///
/// Run by root, container root is never host root nor any host user or group: container IDs
/// 0, 1, 2, ... are root's own ranges in /etc/subuid and /etc/subgid, or, without such ranges,
/// the first block of 65536 host IDs from 1879048192 (0x70000000) that no account of
/// /etc/passwd, group of /etc/group or range of /etc/subuid and /etc/subgid touches (usually
/// 1879048192 itself: container ID N is host ID 1879048192 + N). contain run by root uses the
/// same maps, so a tree root's pseudo made boots with them. Inside a user namespace (a
/// container, pseudo, unshare -Ur), root's default is the namespace's own IDs as themselves.
/// -u and -g give any other maps.
///
/// The command runs in a session of its own, so it can neither type into your terminal nor
/// signal your shell's process group; and it never gets your terminal: those of stdin, stdout
/// and stderr that are a terminal are a pty of pseudo's instead, relayed to and from yours
/// while pseudo runs and hung up when it returns, so nothing the command leaves running reads
/// your keys or writes to your terminal afterwards. Pipes and files are passed as they are.
#[derive(Parser)]
#[command(version, about, long_about, after_help = EXAMPLES)]
struct Args {
    /// UID map START:LOWER:COUNT[,...] (container start, host start, length)
    #[arg(short = 'u', value_name = "MAP", value_parser = parse_map)]
    uid_map: Option<IdMap>,
    /// GID map START:LOWER:COUNT[,...]
    #[arg(short = 'g', value_name = "MAP", value_parser = parse_map)]
    gid_map: Option<IdMap>,
    /// Also create a mount namespace, so the command can mount (e.g. bind host devices into a
    /// chroot) without touching the host's mounts: all mounts are made private first
    #[arg(short = 'm', long = "mount")]
    mount: bool,
    /// Also create a PID namespace (implies -m), so the command can mount procfs, e.g. on a
    /// chroot's /proc as debootstrap and mmdebstrap do. The command runs as PID 2 under a
    /// small init of pseudo's and sees only its own processes in a fresh /proc; what it leaves
    /// running is killed when it ends
    #[arg(short = 'p', long = "pid")]
    pid: bool,
    /// Command and arguments (default: $SHELL, else /bin/sh)
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

const EXAMPLES: &str = "Examples:
  pseudo id -u                               prints 0
  tar -c -C src . | pseudo tar -x -C dest    unpack with owners mapped
  pseudo -p mmdebstrap bookworm dir          bootstrap Debian into dir";

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
        let extra: &[Namespace] = match (args.pid, args.mount) {
            (true, _) => &[Namespace::Mount, Namespace::Pid],
            (false, true) => &[Namespace::Mount],
            (false, false) => &[],
        };

        // The command runs in a session of its own, on a pty of ours in place of the caller's
        // terminal: it can reach neither the caller's terminal nor its process group, and the
        // terminal's ^C comes to us, to pass on (see common/src/session.rs).
        let session = Session::for_caller()?;
        let supervisor =
            Supervisor::with_forwarded(&FORWARDED)?.passing_to_group(&TERMINAL_SIGNALS);
        let child = NsChild::spawn(extra, &maps, |_| {
            if !extra.is_empty() {
                mount::make_private()?;
            }
            if args.pid {
                chroot::run_as_init(&exec, &FORWARDED, || session.enter())
            } else {
                session.enter()?;
                Err(exec.exec())
            }
        })?;
        let pid = child.release()?;
        session.wait(&supervisor, pid)
    })
}
