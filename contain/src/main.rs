//! contain: boot a command as PID 1 of a rootless container.

use clap::Parser;
use common::binds::{parse_bind, UserMounts};
use common::caps::Lockdown;
use common::cgroup::{parse_bytes, CpuQuota, Resources};
use common::cli::parse_args;
use common::container::{Container, DEFAULT_STOP_TIMEOUT};
use common::display::{parse_size, Gui, GuiMode, GuiSize};
use common::environment::{self, parse_assignment, Assignment};
use common::errors;
use common::idmap::{parse_map, IdMap, IdMaps};
use common::mount::{parse_tmpfs_size, TmpfsSize};
use common::net::{NetMode, Publish};
use common::overlay::{Layers, Upper};
use common::registry::{self, parse_name};
use common::supervise::parse_signal;
use std::ffi::OsString;
use std::path::PathBuf;

/// Boot CMD (default /bin/sh) as PID 1 of a container rooted at DIR, without privilege.
///
/// The container gets new user, mount, PID, IPC, UTS, cgroup and time namespaces, and a new
/// network namespace unless -n (--net host); --net pasta connects it to the host's network.
/// Run by a user, container root is the caller and other IDs map onto the caller's subordinate
/// ranges (/etc/subuid, /etc/subgid). Run by root, the container's IDs are root's own ranges
/// there, or else a block of 65536 host IDs no account, group or subordinate range has
/// (usually from 1879048192: container ID N is host ID 1879048192 + N), as pseudo's: container
/// root can then give its files no host user's or group's ID. CMD starts with a clean
/// environment holding container=contain, PATH, TERM, and HOME and USER of its user (from the
/// container's /etc/passwd), with what -e and --env-file add; in the host's sandbox
/// (--tmp-overlay /) it starts in the caller's directory with the caller's HOME, USER, LOGNAME,
/// SHELL, PATH, TERM, COLORTERM, LANG, LANGUAGE, LC_* and TZ, never what leads to the caller's
/// sessions (DISPLAY, XAUTHORITY, WAYLAND_DISPLAY, DBUS_SESSION_BUS_ADDRESS, SSH_AUTH_SOCK,
/// XDG_RUNTIME_DIR). contain exits with CMD's status (128+N if it died of
/// signal N) and passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGPWR on to it.
/// A halt or power-off inside (reboot(2)) ends contain with status 0; a reboot restarts the
/// container.
///
/// Stopping: after SIGTERM, SIGINT, SIGHUP, SIGQUIT or SIGPWR, init has --stop-timeout seconds
/// to end (a PID 1 ignores signals it has no handler for), then it is killed and contain exits
/// 128+N for the signal N it got (143 for SIGTERM). A signal that comes while the container is
/// still starting ends the start, with nothing left running, and the same status. On the
/// console, pressing ^] three times within a second kills the container at once (status 137).
///
/// systemd as init (CMD leading, inside DIR, to a file named systemd) gets the stopping signals
/// as SIGRTMIN+3 (its halt), a tmpfs on /run, container_uuid, and a cgroup of its own: it boots
/// only from a cgroup v2 subtree delegated to the caller (systemd-run --user --scope -p
/// Delegate=yes contain ...) or as root, and is refused otherwise. Every cgroup contain makes is
/// removed when the container ends.
#[derive(Parser)]
#[command(version, about, long_about, after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("writable_layer").args(["tmp_overlay", "overlay"]))]
struct Args {
    /// No console emulation: CMD gets contain's stdin, stdout and stderr directly
    #[arg(short = 'c')]
    no_console: bool,
    /// Share the host's network namespace (the same as --net host)
    #[arg(short = 'n', conflicts_with = "net")]
    host_network: bool,
    /// Network: private (a new namespace with only lo, up), host (the host's, as -n), or pasta
    /// (a new namespace connected to the host's network by pasta, from the Debian package passt;
    /// the host's loopback stays out of reach, see --allow-host-loopback). pasta runs as the
    /// caller; run by root, as container root's host user (then host ports below
    /// net.ipv4.ip_unprivileged_port_start cannot be published)
    #[arg(long = "net", value_name = "MODE", value_enum, default_value_t = NetMode::Private)]
    net: NetMode,
    /// Forward a host port into the container, with --net pasta (repeatable; e.g. -p 8080:80).
    /// Debian 12's pasta answers UDP datagrams that come from the host itself only with
    /// --allow-host-loopback; other machines' and TCP are served either way
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "HOSTPORT[:CONTAINERPORT][/tcp|/udp]"
    )]
    publish: Vec<Publish>,
    /// With --net pasta, let the container reach the host's loopback (services listening on
    /// 127.0.0.1 or ::1 only) at its gateway address, where they see the connection come from
    /// the host itself. Off by default: such services often trust every local caller. Not
    /// with --gui
    #[arg(long = "allow-host-loopback")]
    allow_host_loopback: bool,
    /// UID map START:LOWER:COUNT[,...] (container start, host start, length)
    #[arg(short = 'u', value_name = "MAP", value_parser = parse_map)]
    uid_map: Option<IdMap>,
    /// GID map START:LOWER:COUNT[,...]
    #[arg(short = 'g', value_name = "MAP", value_parser = parse_map)]
    gid_map: Option<IdMap>,
    /// Bind the host's SRC (a directory, with what is mounted below it, or a file) at DEST in
    /// the container (default: SRC; repeatable). DEST is resolved inside the container, as
    /// every mount target (symbolic links never lead out), and made when missing: in the
    /// writable layer of a layered root, in DIR otherwise. Mounted with the root's own (after
    /// /dev, before /proc and the -i hook), parents before what lies below them; SRC may not
    /// hold a `:`
    #[arg(long = "bind", value_name = "SRC[:DEST]", value_parser = parse_bind)]
    bind: Vec<(PathBuf, String)>,
    /// As --bind, read-only, with everything mounted below SRC, also for container root (the
    /// kernel locks it: it cannot be made writable or unmounted inside)
    #[arg(long = "ro-bind", value_name = "SRC[:DEST]", value_parser = parse_bind)]
    ro_bind: Vec<(PathBuf, String)>,
    /// Mount an empty tmpfs (mode 0755, nosuid, nodev) of SIZE (N, Nk, Nm, Ng or N% of
    /// memory; default 25%) at DEST in the container (repeatable)
    #[arg(long = "tmpfs", value_name = "DEST[:SIZE]")]
    tmpfs: Vec<String>,
    /// Set variable NAME in CMD's environment (repeatable); without =VALUE, to its value in
    /// contain's own environment (left out if it has none)
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]", value_parser = parse_assignment)]
    env: Vec<Assignment>,
    /// Set the variables of FILE, one NAME=VALUE (or NAME, as -e) a line; blank lines and lines
    /// starting with # are skipped, VALUE is taken literally (repeatable; -e wins)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Start CMD in DIR inside the container (absolute; default: /, and in the host's sandbox
    /// the caller's working directory when the sandbox has it)
    #[arg(short = 'w', long = "workdir", value_name = "DIR", value_parser = parse_workdir)]
    workdir: Option<PathBuf>,
    /// The container's host name (default: the host's, in a UTS namespace of the container's)
    #[arg(long = "hostname", value_name = "NAME", value_parser = parse_hostname)]
    hostname: Option<String>,
    /// Run CMD with /bin/sh -c inside the new namespaces, in DIR, before pivoting into it
    /// (e.g. to bind-mount host directories into the container)
    #[arg(short = 'i', value_name = "CMD")]
    inside: Option<String>,
    /// Run CMD with /bin/sh -c outside the namespaces, as the invoking user, once they exist;
    /// $CONTAIN_PID holds the container init's PID (e.g. to move a veth end in)
    #[arg(short = 'o', value_name = "CMD")]
    outside: Option<String>,
    /// Drop capabilities: comma-separated names (case-insensitive, CAP_ optional) or `all`
    /// (e.g. --cap-drop sys_module,sys_time,syslog)
    #[arg(long = "cap-drop", value_name = "LIST")]
    cap_drop: Vec<String>,
    /// Keep or give back capabilities after --cap-drop; with --user, the only ones the user
    /// holds, and the only ones in its bounding set (e.g. --cap-drop all --cap-add chown)
    #[arg(long = "cap-add", value_name = "LIST")]
    cap_add: Vec<String>,
    /// Run CMD as this user and group inside, numeric, GID defaulting to UID (e.g. --user 1000
    /// --cap-drop all --cap-add net_bind_service: a server binding port 80 as uid 1000). The
    /// user holds only --cap-add's capabilities, and its bounding set only those too, as
    /// Docker's: a set-user-ID root program in DIR (su, sudo) gives it no others back
    #[arg(long = "user", value_name = "UID[:GID]")]
    user: Option<String>,
    /// Set no_new_privs: setuid programs and file capabilities grant nothing in the container
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Layered root: DIR read-only under a writable layer on a tmpfs (of --tmp-overlay-size),
    /// whose changes are gone when the container ends. DIR / is a sandbox of the host's own
    /// system
    #[arg(long = "tmp-overlay")]
    tmp_overlay: bool,
    /// Size of --tmp-overlay's writable layer, a tmpfs: N, Nk, Nm, Ng (bytes, KiB, MiB, GiB) or
    /// N% of the machine's memory; when it is full, writes fail with "No space left on device"
    /// [default: 25%]. With DIR /, the layer of every top-level directory together; the
    /// sandbox's fresh /tmp and /run hold 10% of memory each, its / (mount points only) 4 MiB
    #[arg(
        long = "tmp-overlay-size",
        value_name = "SIZE",
        value_parser = parse_tmpfs_size,
        requires = "tmp_overlay"
    )]
    tmp_overlay_size: Option<TmpfsSize>,
    /// Layered root: DIR read-only under a writable layer kept in STATE (an existing directory
    /// of yours, not a symbolic link; its upper/ and work/ are made on first use, and no link
    /// in it is followed), for the next run to see; one container per STATE at a time. Remove
    /// it with `pseudo rm -rf STATE`
    #[arg(long = "overlay", value_name = "STATE")]
    overlay: Option<PathBuf>,
    /// A read-only layer under DIR, with --tmp-overlay or --overlay (repeatable: the first one
    /// given is the lowest, DIR is on top)
    #[arg(long = "layer", value_name = "LOWER", requires = "writable_layer")]
    layer: Vec<PathBuf>,
    /// A display of the container's own, shown on $DISPLAY: xephyr (a nested X server in a
    /// window) or xpra (each window of the container as a window of its own); inside,
    /// DISPLAY=:0 and XAUTHORITY lead to it and nothing leads to the host's X server
    #[arg(long = "gui", value_name = "MODE", value_enum)]
    gui: Option<GuiMode>,
    /// Size of the --gui display: WIDTHxHEIGHT (default 1024x768) or full (the whole screen)
    #[arg(long = "gui-size", value_name = "WxH|full", value_parser = parse_size, requires = "gui")]
    gui_size: Option<GuiSize>,
    /// Seconds init may take to end after contain gets SIGTERM, SIGINT, SIGHUP, SIGQUIT or
    /// SIGPWR (passed on to it) before it is killed; contain then exits 128+N for signal N
    #[arg(
        long = "stop-timeout",
        value_name = "SECONDS",
        default_value_t = DEFAULT_STOP_TIMEOUT.as_secs() as u32,
        value_parser = clap::value_parser!(u32).range(0..=86400)
    )]
    stop_timeout: u32,
    /// The signal that SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGPWR reach init as: a name (TERM,
    /// PWR, RTMIN+3, counted from glibc's SIGRTMIN 34 as systemd does) or a number. Default:
    /// RTMIN+3 (halt) for a systemd init, the signal itself for others
    #[arg(long = "stop-signal", value_name = "SIG", value_parser = parse_signal)]
    stop_signal: Option<i32>,
    /// Limit the container's memory to BYTES (suffix k, m, g: e.g. 512m), on its cgroup
    /// (memory.max); needs the memory controller delegated to the caller
    #[arg(long = "memory", value_name = "BYTES", value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Limit the container to N processes and threads (pids.max); needs the pids controller
    #[arg(long = "pids-limit", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pids_limit: Option<u64>,
    /// Limit the container to N CPUs' worth of time (e.g. 1.5; cpu.max); needs the cpu
    /// controller
    #[arg(long = "cpus", value_name = "N", value_parser = parse_cpus)]
    cpus: Option<CpuQuota>,
    /// Register the container under NAME (letters, digits, _, . and -), for `inject NAME` and
    /// --list; refused while a container of that name runs
    #[arg(long = "name", value_name = "NAME", value_parser = parse_name)]
    name: Option<String>,
    /// List the running containers (yours; root's: everyone's): name, supervisor PID, start
    /// (UTC), DIR and command, one line each
    #[arg(long = "list", exclusive = true)]
    list: bool,
    /// Root directory of the container
    #[arg(value_name = "DIR", required_unless_present = "list")]
    root: Option<PathBuf>,
    /// Command and arguments run as PID 1 (default: /bin/sh)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

const EXAMPLES: &str = "Examples:
  contain DIR                              a shell as PID 1 in DIR
  contain -n DIR /sbin/init                boot a distribution sharing the host network
  contain --net pasta -p 8080:80 DIR httpd -f -p 80   a web server reachable on host port 8080
  contain --bind /srv --ro-bind ~/data:/data DIR   host directories in the container
  contain --tmp-overlay --bind \"$PWD\" / bash   a sandbox of the host: only $PWD is kept
  contain -o 'ip link set veth1 netns $CONTAIN_PID' DIR /sbin/init
  contain --cap-drop sys_module,sys_time,syslog DIR /sbin/init
  contain --user 1000 --cap-drop all --cap-add net_bind_service DIR httpd -f -p 80
  contain --tmp-overlay DIR /sbin/init     boot DIR, keep none of its changes
  contain --overlay STATE --layer BASE DIR DIR over BASE, changes kept in STATE
  contain --tmp-overlay / /bin/bash        a throw-away sandbox of the host's own system
  contain --gui xephyr --gui-size full --cap-drop sys_module,sys_time DIR /sbin/init   a desktop
  contain --gui xpra DIR xterm             the container's windows on your desktop
  contain --stop-timeout 60 DIR /sbin/init give init a minute to shut down on SIGTERM
  systemd-run --user --scope -p Delegate=yes contain DIR /sbin/init   boot systemd
  contain --memory 1g --pids-limit 500 --cpus 2 DIR /sbin/init   with limits (a delegated cgroup)
  contain --name web DIR httpd -f; inject web sh   name a container, enter it by name
  contain --list                           what runs
On the console, ^] ^] ^] (three times within a second) kills the container.";

/// --cpus: a positive number of CPUs, at least a hundredth of one (the kernel's least quota).
fn parse_cpus(text: &str) -> Result<CpuQuota, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(CpuQuota::of_cpus)
        .ok_or_else(|| format!("{text:?} is not a number of CPUs (e.g. 0.5, 2)"))
}

fn main() {
    errors::run_main("contain", || {
        let args: Args = parse_args();
        if args.list {
            registry::print_list()?;
            return Ok(0);
        }
        let command = if args.command.is_empty() {
            vec!["/bin/sh".into()]
        } else {
            args.command
        };
        let lockdown = Lockdown::from_options(
            &args.cap_drop,
            &args.cap_add,
            args.user.as_deref(),
            args.no_new_privs,
        )?;
        let mounts = UserMounts::new(&args.bind, &args.ro_bind, &args.tmpfs)?;
        let env = environment::from_options(&args.env_file, &args.env)?;
        Container {
            root: args.root.unwrap_or_default(),
            mounts,
            command,
            maps: IdMaps::from_args(args.uid_map, args.gid_map)?,
            console: !args.no_console,
            network: if args.host_network {
                NetMode::Host
            } else {
                args.net
            },
            publish: args.publish,
            host_loopback: args.allow_host_loopback,
            inside_hook: args.inside,
            outside_hook: args.outside,
            lockdown,
            layers: match (args.tmp_overlay, args.overlay) {
                (true, _) => Some(
                    Layers::new(Upper::Temporary, args.layer).with_tmp_size(args.tmp_overlay_size),
                ),
                (false, Some(state)) => Some(Layers::new(Upper::Kept(state), args.layer)),
                (false, None) => None,
            },
            gui: args.gui.map(|mode| Gui {
                mode,
                size: args.gui_size.unwrap_or_default(),
            }),
            stop_timeout: std::time::Duration::from_secs(args.stop_timeout.into()),
            stop_signal: args.stop_signal,
            limits: Resources {
                memory: args.memory,
                pids: args.pids_limit,
                cpu: args.cpus,
            },
            env,
            workdir: args.workdir,
            hostname: args.hostname,
            name: args.name,
        }
        .run()
    })
}

fn parse_workdir(text: &str) -> Result<PathBuf, String> {
    if !text.starts_with('/') {
        return Err("DIR must be an absolute path inside the container".into());
    }
    Ok(PathBuf::from(text))
}

/// A host name as the kernel takes it: 1 to 64 bytes, no NUL.
fn parse_hostname(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 64 || text.contains('\0') {
        return Err("a host name has 1 to 64 bytes".into());
    }
    Ok(text.to_string())
}
