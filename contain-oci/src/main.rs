//! contain-oci: an OCI runtime, driven by container engines through runc's command line.

use clap::{Parser, Subcommand, ValueEnum};
use common::cli::parse_args_failing_with;
use common::errors::{self, exit_error, one_line};
use common::oci::create::{create, CreateOptions};
use common::oci::exec::{self, ExecOptions, Overrides};
use common::oci::log::{self, LogFormat};
use common::oci::{cgroups, documents, lifecycle, signal, state};
use std::path::PathBuf;

/// An OCI runtime (runtime-spec 1.x, runc's command line) for podman, containerd and other
/// engines: `create` builds a container from a bundle (config.json and a root file system)
/// and leaves its process waiting for `start`.
///
/// The container is made with the building blocks of contain: symlink-safe mounts (every
/// mount point is resolved inside the root), new user namespaces mapped through
/// newuidmap/newgidmap where the caller needs them, capabilities set one by one. It runs
/// rootless (as a user, with a user namespace in config.json, or as root of an engine's user
/// namespace, as under rootless podman) and as root. The process is moved into
/// linux.cgroupsPath before it runs (every v1 hierarchy on a v1 or hybrid host, else the v2
/// tree), with linux.resources written there (memory, cpu, cpuset, pids, blockIO, hugepages,
/// unified; device rules on v1); pause, resume, update, ps and kill --all work through it.
/// Where the caller may not write cgroups (rootless on a cgroup v1 host) they are skipped, as
/// crun does. linux.seccomp is compiled to a BPF filter
/// (common::seccomp) and loaded in every process of the container, exec's included.
///
/// Errors: one line on stderr (`contain-oci: what failed: why`) and exit status 1, as runc;
/// with --log FILE the line is also written there, as a JSON object
/// {"level":"error","msg":...,"time":...} with --log-format json, which podman and containerd
/// read to show the user.
#[derive(Parser)]
#[command(version, about, long_about, after_help = EXAMPLES)]
struct Args {
    /// Directory for the containers' state (default /run/contain-oci for root,
    /// $XDG_RUNTIME_DIR/contain-oci for a user and for root of a user namespace, else
    /// /run/user/UID/contain-oci)
    #[arg(long, value_name = "DIR", global = true)]
    root: Option<PathBuf>,
    /// Also write messages to FILE
    #[arg(long, value_name = "FILE", global = true)]
    log: Option<PathBuf>,
    /// The format of --log: text or json (one {"level","msg","time"} object a line)
    #[arg(long = "log-format", value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Write debug messages to --log too
    #[arg(long, global = true)]
    debug: bool,
    /// cgroupsPath is systemd's slice:prefix:name: systemd makes the container a transient
    /// scope (over D-Bus, with Delegate=yes; root, also root of a system container with its
    /// own systemd: the system's systemd; a user, and root of a rootless engine's namespace:
    /// their own), its limits are written there, and delete has systemd stop it; refused
    /// where no systemd runs, skipped rootless on cgroup v1, as crun
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// With spec: a config.json for a user without privilege (a user namespace mapping the
    /// caller). Otherwise accepted for runc's command line (true, false or auto): rootless
    /// operation is detected
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", global = true)]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container from a bundle: its process waits for `start`, and create exits
    Create {
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Let a created container's process run its command
    Start {
        /// The container's ID
        id: String,
    },
    /// Print a container's state as JSON (ociVersion, id, status, pid, bundle, ...)
    State {
        /// The container's ID
        id: String,
    },
    /// Send a signal (default SIGTERM; a number or a name) to the container's process
    Kill {
        /// Signal every process of the container
        #[arg(short, long)]
        all: bool,
        /// The container's ID
        id: String,
        /// The signal: a number or a name, with or without SIG (9, KILL, SIGKILL)
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Remove a stopped or created container's state; --force kills a running one first
    Delete {
        /// Kill the container's processes first if it runs; a missing container is no error
        #[arg(short, long)]
        force: bool,
        /// The container's ID
        id: String,
    },
    /// Run another process in a running container
    Exec {
        /// The process, as config.json's `process` object (JSON file)
        #[arg(short, long, value_name = "FILE")]
        process: Option<PathBuf>,
        /// Give the process a terminal (its master sent to --console-socket)
        #[arg(short, long)]
        tty: bool,
        /// The unix socket to send the terminal's master to
        #[arg(long = "console-socket", value_name = "SOCKET")]
        console_socket: Option<PathBuf>,
        /// Exit once the process runs, leaving it to the caller
        #[arg(short, long)]
        detach: bool,
        /// Write the process's PID (digits only) to FILE
        #[arg(long = "pid-file", value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// Pass descriptors 3 to 3+N-1 on to the process
        #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
        preserve_fds: u32,
        /// The process's working directory
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Add NAME=VALUE to the process's environment (repeatable)
        #[arg(short, long, value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Run as UID[:GID] inside
        #[arg(short, long, value_name = "UID[:GID]")]
        user: Option<String>,
        /// Add a capability (repeatable; CAP_NAME)
        #[arg(long, value_name = "CAP")]
        cap: Vec<String>,
        /// Set no_new_privs for the process
        #[arg(long = "no-new-privs")]
        no_new_privs: bool,
        /// The container's ID
        id: String,
        /// The command and its arguments (without --process)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Freeze every process of the container (its cgroup's freezer, v1 or v2)
    Pause {
        /// The container's ID
        id: String,
    },
    /// Thaw a paused container
    Resume {
        /// The container's ID
        id: String,
    },
    /// Change the resources (cgroup limits) of a running container
    Update {
        /// linux.resources of config.json as JSON (memory, cpu, pids, blockIO,
        /// hugepageLimits, unified): a file, or - for stdin
        #[arg(short = 'r', long, value_name = "FILE")]
        resources: PathBuf,
        /// The container's ID
        id: String,
    },
    /// List the container's processes (--format json: a JSON array of PIDs)
    Ps {
        /// table (ps's own output) or json
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// The container's ID
        id: String,
        /// Options for ps (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List the containers
    List {
        /// table or json
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print the IDs only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print the runtime-spec features document: what this runtime supports
    Features,
    /// Write a default config.json into the bundle directory
    Spec {
        /// The bundle directory
        #[arg(short, long, value_name = "DIR", default_value = ".")]
        bundle: PathBuf,
    },
    /// Create and start a container, wait for its process and remove it (runc run)
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Exit once the container runs, leaving it in place
        #[arg(short, long)]
        detach: bool,
    },
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The bundle directory (config.json and the root file system)
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    bundle: PathBuf,
    /// Write the PID of the container's process (digits only, atomically) to FILE
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// The unix socket to send the terminal's master to (process.terminal)
    #[arg(long = "console-socket", value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Move the root onto / and chroot instead of pivot_root (for a root on ramfs)
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass descriptors 3 to 3+N-1 on to the process
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    /// The container's ID (letters, digits, '_', '-', '.', '+')
    id: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

const EXAMPLES: &str = "Examples:
  contain-oci spec --rootless -b BUNDLE         a config.json for the root file system BUNDLE/rootfs
  contain-oci create -b BUNDLE --pid-file PIDFILE ID   set up container ID, its process waiting
  contain-oci start ID                          let it run its command
  contain-oci state ID                          its state: created, running or stopped
  contain-oci kill ID KILL                      send it SIGKILL
  contain-oci delete ID                         remove the stopped container
  podman --runtime contain-oci run --rm IMAGE CMD   podman with contain-oci as its runtime";

impl CreateArgs {
    fn options(self, root: PathBuf, systemd_cgroup: bool) -> CreateOptions {
        CreateOptions {
            root,
            id: self.id,
            bundle: self.bundle,
            pid_file: self.pid_file,
            console_socket: self.console_socket,
            console_connection: None,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            systemd_cgroup,
        }
    }
}

fn main() {
    errors::run_main("contain-oci", || {
        if let Err(e) = Args::try_parse() {
            log_usage_error(&e);
        }
        let args: Args = parse_args_failing_with(1);
        log::init(args.log.clone(), args.log_format, args.debug);
        run(args).map_err(|e| {
            let line = one_line(&e);
            log::error(&line);
            exit_error(1, line)
        })
    })
}

/// A command line clap refuses still reaches `--log`, where engines (containerd's shim) look
/// for the reason: the options are found by hand, since parsing failed.
fn log_usage_error(e: &clap::Error) {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return;
    }
    let words: Vec<String> = std::env::args().skip(1).collect();
    let value_of = |name: &str| {
        words.iter().enumerate().find_map(|(i, w)| {
            w.strip_prefix(&format!("{name}="))
                .map(str::to_string)
                .or_else(|| (w == name).then(|| words.get(i + 1).cloned()).flatten())
        })
    };
    let Some(file) = value_of("--log") else {
        return;
    };
    let format = match value_of("--log-format").as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    log::init(Some(PathBuf::from(file)), format, false);
    let text = e.kind().as_str().unwrap_or("invalid command line");
    let detail = e.to_string();
    let first = detail
        .lines()
        .next()
        .unwrap_or(text)
        .trim_start_matches("error: ");
    log::error(&common::errors::printable(first));
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<i32> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(0)
}

fn run(args: Args) -> anyhow::Result<i32> {
    let root = args.root.clone().unwrap_or_else(state::default_root);
    match args.command {
        Command::Create { create: c } => create(&c.options(root, args.systemd_cgroup)).map(|_| 0),
        Command::Pause { id } => cgroups::pause(&root, &id).map(|()| 0),
        Command::Resume { id } => cgroups::resume(&root, &id).map(|()| 0),
        Command::Update { resources, id } => {
            cgroups::update(&root, &id, &cgroups::read_resources(&resources)?).map(|()| 0)
        }
        Command::Start { id } => lifecycle::start(&root, &id).map(|()| 0),
        Command::State { id } => print_json(&lifecycle::state(&root, &id)?),
        Command::Kill {
            all,
            id,
            signal: sig,
        } => lifecycle::kill(&root, &id, signal::parse(&sig)?, all).map(|()| 0),
        Command::Delete { force, id } => lifecycle::delete(&root, &id, force).map(|()| 0),
        Command::Exec {
            process,
            tty,
            console_socket,
            detach,
            pid_file,
            preserve_fds,
            cwd,
            env,
            user,
            cap,
            no_new_privs,
            id,
            command,
        } => {
            let overrides = Overrides {
                args: command,
                tty,
                cwd,
                env,
                user,
                caps: cap,
                no_new_privs,
            };
            let process = exec::process_of(&root, &id, process.as_deref(), overrides)?;
            exec::exec(&ExecOptions {
                root,
                id,
                process,
                console_socket,
                detach,
                pid_file,
                preserve_fds,
            })
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = lifecycle::pids(&root, &id)?;
            match format {
                Format::Json => {
                    println!("{}", serde_json::to_string(&pids)?);
                    Ok(0)
                }
                Format::Table => common::oci::inspect::print_ps_table(&pids, &ps_args),
            }
        }
        Command::List { format, quiet } => {
            let states = lifecycle::list(&root)?;
            match (format, quiet) {
                (Format::Json, _) => print_json(&serde_json::Value::from(states)),
                (Format::Table, true) => {
                    for state in states {
                        println!("{}", state["id"].as_str().unwrap_or(""));
                    }
                    Ok(0)
                }
                (Format::Table, false) => {
                    common::oci::inspect::print_list_table(&states);
                    Ok(0)
                }
            }
        }
        Command::Features => print_json(&documents::features()),
        Command::Spec { bundle } => {
            let rootless = args.rootless.is_some_and(|r| r != "false");
            documents::write_spec(&bundle, rootless).map(|()| 0)
        }
        Command::Run { create: c, detach } => {
            common::oci::lifecycle::run(c.options(root, args.systemd_cgroup), detach)
        }
    }
}
