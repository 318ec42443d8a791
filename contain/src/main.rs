//! contain: boot a command as PID 1 of a rootless container.

use clap::Parser;
use common::caps::Lockdown;
use common::container::{Container, DEFAULT_STOP_TIMEOUT};
use common::display::{parse_size, Gui, GuiMode, GuiSize};
use common::errors::{self, parse_args};
use common::idmap::{parse_map, IdMap, IdMaps};
use common::mount::{parse_tmpfs_size, TmpfsSize};
use common::net::{NetMode, Publish};
use common::overlay::{Layers, Upper};
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
/// root can then give its files no host user's or group's ID. CMD starts with a clean environment holding
/// container=contain, PATH and TERM. contain exits with CMD's status (128+N if it died of
/// signal N) and passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGPWR on to it.
/// A halt or power-off inside (reboot(2)) ends contain with status 0; a reboot restarts the
/// container.
///
/// Stopping: after SIGTERM, SIGINT, SIGHUP, SIGQUIT or SIGPWR, init has --stop-timeout seconds
/// to end (a PID 1 ignores signals it has no handler for), then it is killed and contain exits
/// 128+N for the signal N it got (143 for SIGTERM). A signal that comes while the container is
/// still starting ends the start, with nothing left running, and the same status. On the
/// console, pressing ^] three times within a second kills the container at once (status 137).
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
    /// Root directory of the container
    #[arg(value_name = "DIR")]
    root: PathBuf,
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
  contain -i 'mount --bind /srv srv' DIR   bind a host directory into the container
  contain -o 'ip link set veth1 netns $CONTAIN_PID' DIR /sbin/init
  contain --cap-drop sys_module,sys_time,syslog DIR /sbin/init
  contain --user 1000 --cap-drop all --cap-add net_bind_service DIR httpd -f -p 80
  contain --tmp-overlay DIR /sbin/init     boot DIR, keep none of its changes
  contain --overlay STATE --layer BASE DIR DIR over BASE, changes kept in STATE
  contain --tmp-overlay / /bin/bash        a throw-away sandbox of the host's own system
  contain --gui xephyr --gui-size full --cap-drop sys_module,sys_time DIR /sbin/init   a desktop
  contain --gui xpra DIR xterm             the container's windows on your desktop
  contain --stop-timeout 60 DIR /sbin/init give init a minute to shut down on SIGTERM
On the console, ^] ^] ^] (three times within a second) kills the container.";

fn main() {
    errors::run_main("contain", || {
        let args: Args = parse_args();
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
        Container {
            root: args.root,
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
        }
        .run()
    })
}
