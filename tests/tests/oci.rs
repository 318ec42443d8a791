//! contain-oci, the OCI runtime: driven directly on a bundle (create, start, state, kill,
//! exec, ps, delete, errors and the JSON log) and through podman, as an unprivileged user and
//! as root.

use serde_json::Value;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use tests::*;

const OCI: &str = "contain-oci";

/// A bundle (config.json from `contain-oci spec`, a busybox root file system) and a state
/// directory of its own.
struct Bundle {
    dir: TempDir,
    _rootfs: TempDir,
    who: As,
}

impl Bundle {
    /// A bundle whose process runs `script` with sh, without a terminal; `tweak` changes the
    /// config further.
    fn new(who: As, script: &str, tweak: impl FnOnce(&mut Value)) -> Bundle {
        let rootfs = busybox_rootfs();
        let dir = TempDir::new();
        let mut args = vec!["spec", "-b", dir.path().to_str().unwrap()];
        if who == As::User {
            args.push("--rootless");
        }
        expect_success(&run(who, OCI, &args));
        let config = dir.join("config.json");
        let mut spec: Value = serde_json::from_str(&read(&config)).unwrap();
        spec["root"]["path"] = Value::from(rootfs.path().to_str().unwrap());
        spec["process"]["terminal"] = Value::from(false);
        spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        tweak(&mut spec);
        fs::write(&config, spec.to_string()).unwrap();
        dir.mkdir("state");
        Bundle {
            dir,
            _rootfs: rootfs,
            who,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `contain-oci --root STATE ARGS...`.
    fn oci(&self, args: &[&str]) -> Output {
        let mut all = vec!["--root".to_string(), self.dir.arg("state")];
        all.extend(args.iter().map(|a| a.to_string()));
        run(self.who, OCI, &all)
    }

    /// `create` with the container's stdout and stderr (and create's own) in files of the
    /// bundle: the container keeps them after create exits.
    fn create(&self, id: &str) -> Output {
        sh(
            self.who,
            &format!(
                "exec {OCI} --root {} create -b {} --pid-file {} {id} >{} 2>{}",
                self.dir.arg("state"),
                self.dir.path_arg(),
                self.dir.arg("pid"),
                self.dir.arg("out"),
                self.dir.arg("err"),
            ),
        )
    }

    fn output(&self) -> String {
        fs::read_to_string(self.dir.join("out")).unwrap_or_default()
    }

    fn errors(&self) -> String {
        fs::read_to_string(self.dir.join("err")).unwrap_or_default()
    }

    fn state(&self, id: &str) -> Value {
        let out = self.oci(&["state", id]);
        serde_json::from_str(&expect_success(&out)).unwrap()
    }

    fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }
}

/// A test that fails half-way leaves no container running: each one still in the bundle's
/// state directory is deleted with --force (its processes killed).
impl Drop for Bundle {
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(self.state_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if let Some(id) = entry.file_name().to_str() {
                let _ = self.oci(&["delete", "--force", id]);
            }
        }
    }
}

fn whos() -> Vec<As> {
    let mut whos = vec![As::User];
    if is_root() {
        whos.push(As::Root);
    }
    whos
}

fn pid_namespace(pid: u32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap()
}

#[test]
fn create_waits_for_start_then_runs_until_killed_and_delete_removes_it() {
    for who in whos() {
        let script = "echo hello from $$; trap 'echo got TERM; exit 7' TERM; \
                      while :; do sleep 0.05; done";
        let b = Bundle::new(who, script, |_| {});
        let out = b.create("c1");
        assert_eq!(code(&out), 0, "{who:?}: {}", b.errors());
        let pid_text = read(&b.dir.join("pid"));
        assert!(
            !pid_text.is_empty() && pid_text.bytes().all(|c| c.is_ascii_digit()),
            "{who:?}: pid file holds {pid_text:?}"
        );
        let pid: u32 = pid_text.parse().unwrap();
        assert!(
            process_alive(pid),
            "{who:?}: the container's process is gone"
        );
        assert_ne!(pid_namespace(pid), pid_namespace(std::process::id()));
        let state = b.state("c1");
        assert_eq!(state["status"], "created", "{who:?}: {state}");
        assert_eq!(state["pid"], pid, "{who:?}: {state}");
        assert_eq!(state["id"], "c1");
        assert_eq!(state["bundle"], b.dir.path().to_str().unwrap());
        assert!(state["created"].as_str().unwrap().ends_with('Z'), "{state}");
        assert_eq!(b.output(), "", "{who:?}: the command ran before start");

        let again = b.create("c1");
        assert_eq!(code(&again), 1);
        assert!(
            b.errors().contains("\"c1\" already exists"),
            "{}",
            b.errors()
        );

        expect_success(&b.oci(&["start", "c1"]));
        wait_until("the container's output", || {
            b.output().contains("hello from 1\n")
        });
        assert_eq!(b.status("c1"), "running");
        let start_again = b.oci(&["start", "c1"]);
        assert_eq!(code(&start_again), 1, "{}", describe(&start_again));

        let ps = expect_success(&b.oci(&["ps", "--format", "json", "c1"]));
        let pids: Vec<u32> = serde_json::from_str(&ps).unwrap();
        assert!(pids.contains(&pid), "{ps}");

        let exec = b.oci(&["exec", "c1", "sh", "-c", "echo in $(hostname); exit 5"]);
        assert_eq!(code(&exec), 5, "{}", describe(&exec));
        assert_eq!(stdout(&exec), "in contain-oci\n");

        let refused = b.oci(&["delete", "c1"]);
        let line = expect_error(&refused, OCI, 1);
        assert!(line.contains("not stopped"), "{line}");

        expect_success(&b.oci(&["kill", "c1", "TERM"]));
        wait_until("the container to stop", || b.status("c1") == "stopped");
        assert!(b.output().ends_with("got TERM\n"), "{}", b.output());
        assert_eq!(b.state("c1")["pid"], 0);
        let gone = b.oci(&["kill", "c1", "KILL"]);
        expect_error(&gone, OCI, 1);

        expect_success(&b.oci(&["delete", "c1"]));
        assert!(!b.state_dir().join("c1").exists());
        let line = expect_error(&b.oci(&["state", "c1"]), OCI, 1);
        assert!(line.ends_with("does not exist"), "{line}");
    }
}

#[test]
fn delete_force_kills_a_running_container_and_its_processes() {
    for who in whos() {
        // PID 1 without a handler ignores TERM: only --force's SIGKILL ends it.
        let b = Bundle::new(who, "sleep 1000 & while :; do sleep 0.05; done", |_| {});
        assert_eq!(code(&b.create("c2")), 0, "{}", b.errors());
        expect_success(&b.oci(&["start", "c2"]));
        let init: u32 = read(&b.dir.join("pid")).parse().unwrap();
        let ns = pid_namespace(init);
        let mut all = Vec::new();
        wait_until("the sleeper", || {
            let ps = stdout(&b.oci(&["ps", "--format", "json", "c2"]));
            all = serde_json::from_str(&ps).unwrap_or_default();
            all.len() >= 2
        });
        for pid in &all {
            // The loop's short sleeps may have ended meanwhile.
            if let Ok(own) = fs::read_link(format!("/proc/{pid}/ns/pid")) {
                assert_eq!(own, ns);
            }
        }
        expect_success(&b.oci(&["delete", "--force", "c2"]));
        for pid in all {
            assert!(
                !process_alive(pid),
                "{who:?}: {pid} outlived delete --force"
            );
        }
        assert!(!b.state_dir().join("c2").exists());
        // A container that is gone already is no error for --force.
        expect_success(&b.oci(&["delete", "--force", "c2"]));
    }
}

#[test]
fn config_is_applied_user_capabilities_hostname_env_cwd_readonly_masked() {
    let script = "id -u; id -g; id -G; hostname; echo $GREETING; pwd; grep -e CapEff -e CapBnd /proc/self/status; \
                  touch /x 2>/dev/null && echo root-writable; \
                  cat /proc/kcore 2>/dev/null | wc -c; \
                  touch /proc/sys/kernel/x 2>/dev/null || echo proc-sys-ro; ulimit -n";
    for who in whos() {
        let b = Bundle::new(who, script, |spec| {
            spec["hostname"] = Value::from("box");
            spec["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(Value::from("GREETING=hi there"));
            spec["process"]["cwd"] = Value::from("/tmp/made");
            spec["process"]["user"] = serde_json::json!({"uid": 0, "gid": 0});
            spec["process"]["capabilities"] = serde_json::json!({
                "bounding": ["CAP_KILL", "CAP_CHOWN"],
                "effective": ["CAP_CHOWN"],
                "permitted": ["CAP_KILL", "CAP_CHOWN"]
            });
            spec["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        });
        assert_eq!(code(&b.create("c3")), 0, "{who:?}: {}", b.errors());
        expect_success(&b.oci(&["start", "c3"]));
        wait_until("the container to stop", || b.status("c3") == "stopped");
        // CAP_CHOWN is bit 0, CAP_KILL bit 5; root's exec makes the effective set the
        // permitted one, as under runc.
        assert_eq!(
            b.output(),
            "0\n0\n0\nbox\nhi there\n/tmp/made\nCapEff:\t0000000000000021\n\
             CapBnd:\t0000000000000021\n0\nproc-sys-ro\n256\n",
            "{who:?}: {}",
            b.errors()
        );
        expect_success(&b.oci(&["delete", "c3"]));
    }
}

/// Removes `kind` from the config's linux.namespaces.
fn without_namespace(spec: &mut Value, kind: &str) {
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != kind);
}

#[test]
fn without_a_mount_namespace_the_process_chroots_and_the_callers_mounts_stay() {
    // No /proc in the container: nothing of config.json's mounts was made.
    let script = "test -x /bin/busybox && echo in its root; test -e /proc/self || echo no proc";
    // A user's container with a user namespace and no mount namespace: in the caller's.
    let b = Bundle::new(As::User, script, |spec| without_namespace(spec, "mount"));
    assert_eq!(code(&b.create("nomnt")), 0, "{}", b.errors());
    let pid = read(&b.dir.join("pid"));
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
        fs::read_link("/proc/self/ns/mnt").unwrap()
    );
    let rootfs = b.state("nomnt")["rootfs"].as_str().unwrap().to_string();
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        PathBuf::from(&rootfs)
    );
    assert!(
        b.errors()
            .contains("no mount namespace: mounts, linux.maskedPaths"),
        "{}",
        b.errors()
    );
    expect_success(&b.oci(&["start", "nomnt"]));
    wait_until("the container to stop", || b.status("nomnt") == "stopped");
    assert_eq!(b.output(), "in its root\nno proc\n", "{}", b.errors());
    expect_success(&b.oci(&["delete", "nomnt"]));

    if !require(As::Root) {
        return;
    }
    // Root's container without any namespace (as runtime-tools' linux_ns_itype has it) could
    // change every mount of its caller: the caller is a mount namespace of the test's own,
    // with shared mounts (a runtime's make-private would show), whose table must stay as it was.
    // What other tests do meanwhile shows in that table too, and is not the runtime's doing:
    // see `mounts_changed_by_the_caller`.
    let b = Bundle::new(As::Root, script, |spec| {
        spec["linux"]["namespaces"] = serde_json::json!([]);
        spec.as_object_mut().unwrap().remove("hostname");
    });
    let oci = format!("{OCI} --root {}", b.dir.arg("state"));
    let inside = format!(
        "mount --make-rshared / || exit 1
         cat /proc/self/mountinfo >{before}
         {oci} create -b {bundle} --pid-file {pid} none >{out} 2>{err} || exit 2
         pid=$(cat {pid})
         [ \"$(readlink /proc/$pid/ns/mnt)\" = \"$(readlink /proc/self/ns/mnt)\" ] && echo same mount namespace
         readlink /proc/$pid/root
         {oci} start none || exit 3
         while {oci} state none | grep -q '\"running\"'; do sleep 0.05; done
         {oci} delete none || exit 4
         cat /proc/self/mountinfo >{after}",
        bundle = b.dir.path_arg(),
        pid = b.dir.arg("pid"),
        out = b.dir.arg("out"),
        err = b.dir.arg("err"),
        before = b.dir.arg("mounts-before"),
        after = b.dir.arg("mounts-after"),
    );
    let out = sh(
        As::Root,
        &format!(
            "exec unshare -m --propagation private sh -c {}",
            shell_quote(&inside)
        ),
    );
    assert_eq!(code(&out), 0, "{}: {}", describe(&out), b.errors());
    let rootfs = fs::canonicalize(b._rootfs.path()).unwrap();
    assert_eq!(
        stdout(&out),
        format!("same mount namespace\n{}\n", rootfs.display()),
        "{}",
        b.errors()
    );
    assert_eq!(b.output(), "in its root\nno proc\n", "{}", b.errors());
    let changed = mounts_changed_by_the_caller(
        &read(&b.dir.join("mounts-before")),
        &read(&b.dir.join("mounts-after")),
    );
    assert!(
        changed.is_empty(),
        "the caller's mounts changed: {changed:#?}"
    );
}

/// The mountinfo lines of `after` that are new or changed since `before`, and those of
/// `before` that are gone although their mount point is still there: what a process in that
/// mount namespace did to it. Left out, as no one's doing there: the last field, the
/// superblock's options, which belong to the file system and change with it in every
/// namespace (a cgroup2 mount anywhere in the initial cgroup namespace sets cgroup2's); and
/// mounts that are gone with their mount point, which the kernel detaches from every
/// namespace when the directory is removed where it is no mount point (a podman test beside
/// this one unmounting and removing its container's root, copied into this namespace when
/// it was made).
fn mounts_changed_by_the_caller(before: &str, after: &str) -> Vec<String> {
    let table = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                line.rsplit_once(' ')
                    .map_or(line, |(mount, _)| mount)
                    .to_string()
            })
            .collect()
    };
    let (before, after) = (table(before), table(after));
    let added = after
        .iter()
        .filter(|line| !before.contains(line))
        .map(|line| format!("new or changed: {line}"));
    let removed = before
        .iter()
        .filter(|line| !after.contains(line))
        .filter(|line| {
            // Left escaped (\040 for a space): such a path is not found, and its mount taken
            // for gone with it; none of the runtime's mounts has one.
            let mount_point = line.split(' ').nth(4).unwrap_or_default();
            Path::new(mount_point).exists()
        })
        .map(|line| format!("unmounted: {line}"));
    added.chain(removed).collect()
}

#[test]
fn namespaces_joined_by_path_hold_the_container_with_its_root_and_hostname() {
    if !require(As::Root) {
        return;
    }
    // A process in mount and UTS namespaces of its own (private mounts: unshare's default).
    let holder = spawn(sh_command(
        As::Root,
        "exec unshare --mount --uts sleep 1000",
    ));
    let ns = |pid: &str, kind: &str| fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    let holder_pid = holder.pid().to_string();
    wait_until("unshare's namespaces", || {
        ns(&holder_pid, "uts") != ns("self", "uts")
    });
    let b = Bundle::new(
        As::Root,
        "hostname; cat /marker; test -e /proc/self && echo proc mounted",
        |spec| {
            let rootfs = PathBuf::from(spec["root"]["path"].as_str().unwrap());
            fs::write(rootfs.join("marker"), "its own root\n").unwrap();
            spec["hostname"] = Value::from("joined");
            for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
                match ns["type"].as_str().unwrap() {
                    "mount" => ns["path"] = Value::from(format!("/proc/{holder_pid}/ns/mnt")),
                    "uts" => ns["path"] = Value::from(format!("/proc/{holder_pid}/ns/uts")),
                    _ => {}
                }
            }
        },
    );
    assert_eq!(code(&b.create("joined")), 0, "{}", b.errors());
    let pid = read(&b.dir.join("pid"));
    for kind in ["mnt", "uts"] {
        assert_eq!(ns(&pid, kind), ns(&holder_pid, kind), "{kind}");
    }
    expect_success(&b.oci(&["start", "joined"]));
    wait_until("the container to stop", || b.status("joined") == "stopped");
    assert_eq!(
        b.output(),
        "joined\nits own root\nproc mounted\n",
        "{}",
        b.errors()
    );
    expect_success(&b.oci(&["delete", "joined"]));
    drop(holder);
}

#[test]
fn refusals_are_one_line_with_status_1_and_leave_nothing_behind() {
    let b = Bundle::new(As::User, "true", |_| {});
    let missing = b.oci(&["create", "-b", "/nonexistent/bundle", "x1"]);
    let line = expect_error(&missing, OCI, 1);
    assert!(line.contains("/nonexistent/bundle"), "{line}");

    let bad_id = b.oci(&["create", "-b", &b.dir.path_arg(), "../escape"]);
    let line = expect_error(&bad_id, OCI, 1);
    assert!(line.contains("invalid container ID"), "{line}");

    let unknown = b.oci(&["start", "nosuch"]);
    assert!(expect_error(&unknown, OCI, 1).ends_with("container \"nosuch\" does not exist"));

    let config = b.dir.join("config.json");
    let good = read(&config);
    let mut spec: Value = serde_json::from_str(&good).unwrap();
    spec["process"]["user"]["uid"] = Value::from("zero");
    fs::write(&config, spec.to_string()).unwrap();
    let log = b.dir.join("log.json");
    let log_arg = log.to_str().unwrap().to_string();
    let malformed = b.oci(&[
        "--log",
        &log_arg,
        "--log-format",
        "json",
        "create",
        "-b",
        &b.dir.path_arg(),
        "x2",
    ]);
    let line = expect_error(&malformed, OCI, 1);
    assert!(line.contains("process.user.uid: invalid type"), "{line}");
    let logged: Value = serde_json::from_str(read(&log).lines().last().unwrap()).unwrap();
    assert_eq!(logged["level"], "error");
    assert_eq!(
        format!("{OCI}: {}", logged["msg"].as_str().unwrap()),
        line,
        "the log holds the message"
    );
    let time = logged["time"].as_str().unwrap();
    assert!(
        time.len() >= 20 && time.ends_with('Z') && &time[10..11] == "T",
        "{time}"
    );

    let mut unsupported: Value = serde_json::from_str(&good).unwrap();
    unsupported["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
    fs::write(&config, unsupported.to_string()).unwrap();
    let line = expect_error(&b.oci(&["create", "-b", &b.dir.path_arg(), "x4"]), OCI, 1);
    assert!(
        line.ends_with("linux.intelRdt: not supported by this runtime"),
        "{line}"
    );

    fs::write(&config, good.replace("\"sh\"", "\"no-such-command\"")).unwrap();
    let out = b.create("x3");
    assert_eq!(code(&out), 1);
    assert!(
        b.errors().contains("no-such-command: command not found"),
        "{}",
        b.errors()
    );

    let left: Vec<_> = fs::read_dir(b.state_dir()).unwrap().collect();
    assert!(left.is_empty(), "state left behind: {left:?}");
    let list = expect_success(&b.oci(&["list", "--format", "json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        serde_json::json!([])
    );
}

/// Accepts one connection on a unix socket and receives the descriptor sent over it, with
/// the message's payload.
fn receive_terminal(listener: std::os::unix::net::UnixListener) -> (OwnedFd, Vec<u8>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener.accept().unwrap();
    let mut payload = vec![0u8; 4096];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let mut iov = [std::io::IoSliceMut::new(&mut payload)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            fds.extend(received);
        }
    }
    let len = msg.bytes;
    assert_eq!(fds.len(), 1, "exactly one descriptor is sent");
    payload.truncate(len);
    // SAFETY: the descriptor was just received and is owned by nothing else.
    (unsafe { OwnedFd::from_raw_fd(fds[0]) }, payload)
}

#[test]
fn console_socket_receives_the_terminal_master() {
    for who in whos() {
        let b = Bundle::new(who, "tty; stty size; echo on the terminal", |spec| {
            spec["process"]["terminal"] = Value::from(true);
            spec["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
        });
        let socket = b.dir.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o777)).unwrap();
        let receiver = std::thread::spawn(move || receive_terminal(listener));
        let out = b.oci(&[
            "create",
            "-b",
            &b.dir.path_arg(),
            "--console-socket",
            socket.to_str().unwrap(),
            "c4",
        ]);
        expect_success(&out);
        let (master, payload) = receiver.join().unwrap();
        assert!(!payload.is_empty(), "conmon needs a payload");
        expect_success(&b.oci(&["start", "c4"]));
        let mut text = Vec::new();
        let mut file = fs::File::from(master);
        // Reading the master ends with EIO once the slave's last holder has closed it.
        let _ = std::io::Read::read_to_end(&mut file, &mut text);
        let text = String::from_utf8_lossy(&text);
        assert_eq!(
            text, "/dev/pts/0\r\n30 100\r\non the terminal\r\n",
            "{who:?}"
        );
        wait_until("the container to stop", || b.status("c4") == "stopped");
        expect_success(&b.oci(&["delete", "c4"]));
    }
}

/// podman with private storage, state and configuration under a temporary directory, using
/// contain-oci (or, for comparison, another runtime named in the configuration).
struct Podman {
    dir: TempDir,
    who: As,
}

impl Podman {
    fn new(who: As) -> Podman {
        assert!(
            Path::new("/usr/bin/podman").exists(),
            "podman is not installed (.ci/run installs it: apt-get install podman crun conmon)"
        );
        let dir = TempDir::new();
        for sub in ["home", "run", "tmp", "static", "volumes"] {
            dir.mkdir(sub);
        }
        fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o700)).unwrap();
        let conf = format!(
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             runtime = \"contain-oci\"\n\
             runtime_supports_json = [\"contain-oci\", \"crun\", \"runc\"]\n\
             static_dir = \"{d}/static\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             volume_path = \"{d}/volumes\"\n\
             [engine.runtimes]\n\
             contain-oci = [\"{oci}\"]\n",
            d = dir.path().display(),
            oci = bin(OCI).display(),
        );
        dir.write("containers.conf", conf);
        let rootfs = busybox_rootfs();
        let tarball = dir.join("busybox.tar");
        let tar = sh(
            As::User,
            &format!(
                "tar --owner=0 --group=0 -C {} -cf {} .",
                rootfs.path_arg(),
                tarball.display()
            ),
        );
        expect_success(&tar);
        let podman = Podman { dir, who };
        expect_success(&podman.run(&["import", tarball.to_str().unwrap(), "localhost/bb"]));
        podman
    }

    fn script(&self, args: &[&str]) -> String {
        let d = self.dir.path().display();
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        format!(
            "CONTAINERS_CONF={d}/containers.conf HOME={d}/home XDG_RUNTIME_DIR={d}/run \
             XDG_CONFIG_HOME={d}/home/.config XDG_DATA_HOME={d}/home/.local/share \
             exec podman --root {d}/storage --runroot {d}/runroot --storage-driver vfs {}",
            quoted.join(" ")
        )
    }

    fn run(&self, args: &[&str]) -> Output {
        sh(self.who, &self.script(args))
    }
}

impl Drop for Podman {
    /// Rootless podman leaves a pause process holding its user namespace: end it, by its PID.
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.dir.join("tmp/pause.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

const UNCONFINED: [&str; 4] = ["--network", "none", "--security-opt", "seccomp=unconfined"];

fn podman_run(p: &Podman, options: &[&str], cmd: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend(UNCONFINED);
    args.extend(options);
    args.push("localhost/bb");
    args.extend(cmd);
    p.run(&args)
}

#[test]
fn podman_run_rm_gives_the_output_and_exit_status() {
    for who in whos() {
        let p = Podman::new(who);
        let out = podman_run(
            &p,
            &["--rm"],
            &["sh", "-c", "echo out; echo err >&2; id -u; exit 3"],
        );
        assert_eq!(code(&out), 3, "{who:?}: {}", describe(&out));
        assert_eq!(stdout(&out), "out\n0\n", "{who:?}");
        assert!(
            stderr(&out).contains("err\n"),
            "{who:?}: {}",
            describe(&out)
        );
        let out = podman_run(
            &p,
            &["--rm", "--read-only", "--user", "1000:1000"],
            &[
                "sh",
                "-c",
                "id -u; id -g; touch /x 2>/dev/null || echo read-only",
            ],
        );
        assert_eq!(
            stdout(&out),
            "1000\n1000\nread-only\n",
            "{who:?}: {}",
            describe(&out)
        );
        let out = podman_run(
            &p,
            &["--rm", "--cap-drop", "all"],
            &["grep", "CapEff", "/proc/self/status"],
        );
        assert_eq!(
            stdout(&out),
            "CapEff:\t0000000000000000\n",
            "{who:?}: {}",
            describe(&out)
        );
        // A user namespace config.json asks for: made and mapped by the runtime (rootless:
        // inside podman's own, whose IDs 1-1000 are the user's subordinate ones).
        let map = match who {
            As::User => "0:1:1000",
            As::Root => "0:200000:65536",
        };
        let out = podman_run(
            &p,
            &["--rm", "--uidmap", map, "--gidmap", map],
            &["sh", "-c", "id -u; cat /proc/self/uid_map"],
        );
        let fields: Vec<String> = map.split(':').map(String::from).collect();
        let shown: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
        assert_eq!(
            shown,
            ["0", &fields[0], &fields[1], &fields[2]],
            "{who:?}: {}",
            describe(&out)
        );
        let left = expect_success(&p.run(&["ps", "-a", "-q"]));
        assert_eq!(left, "", "{who:?}: --rm left containers");
    }
}

#[test]
fn podman_detached_logs_exec_top_and_stop() {
    for who in whos() {
        let p = Podman::new(who);
        let script = "echo started; trap 'echo got TERM; exit 0' TERM; \
                      while :; do sleep 0.05; done";
        let out = podman_run(&p, &["-d", "--name", "d1"], &["sh", "-c", script]);
        expect_success(&out);
        wait_until("the container's log", || {
            stdout(&p.run(&["logs", "d1"])) == "started\n"
        });
        let exec = p.run(&["exec", "d1", "sh", "-c", "echo in exec; exit 4"]);
        assert_eq!(code(&exec), 4, "{who:?}: {}", describe(&exec));
        assert_eq!(stdout(&exec), "in exec\n");
        let top = expect_success(&p.run(&["top", "d1", "pid", "args"]));
        assert!(top.contains("sleep 0.05") || top.contains("sh -c"), "{top}");
        expect_success(&p.run(&["stop", "-t", "30", "d1"]));
        let logs = stdout(&p.run(&["logs", "d1"]));
        assert_eq!(
            logs, "started\ngot TERM\n",
            "{who:?}: stopped by TERM at once"
        );
        let status = expect_success(&p.run(&["inspect", "-f", "{{.State.ExitCode}}", "d1"]));
        assert_eq!(status, "0\n");
        expect_success(&p.run(&["rm", "d1"]));

        // A PID 1 that ignores TERM is killed after --time.
        let out = podman_run(&p, &["-d", "--name", "d2"], &["sleep", "1000"]);
        expect_success(&out);
        expect_success(&p.run(&["stop", "-t", "1", "d2"]));
        let status = expect_success(&p.run(&["inspect", "-f", "{{.State.ExitCode}}", "d2"]));
        assert_eq!(status, "137\n", "{who:?}");
        expect_success(&p.run(&["rm", "d2"]));
    }
}

#[test]
fn podman_run_it_gives_a_terminal() {
    for who in whos() {
        let p = Podman::new(who);
        let mut args = vec!["run", "-it", "--rm"];
        args.extend(UNCONFINED);
        args.extend(["localhost/bb", "sh", "-c", "tty; echo status $?"]);
        let out = on_terminal(who, &p.script(&args));
        let text = stdout(&out);
        assert!(
            text.contains("/dev/pts/0\r\nstatus 0\r\n"),
            "{who:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn podman_kill_exec_it_and_rootfs() {
    for who in whos() {
        let p = Podman::new(who);
        let script = "trap 'echo got USR1' USR1; while :; do sleep 0.05; done";
        expect_success(&podman_run(
            &p,
            &["-d", "--name", "k1"],
            &["sh", "-c", script],
        ));
        let mut args = vec!["exec", "-it", "k1", "sh", "-c", "tty; echo exec-it"];
        let out = on_terminal(who, &p.script(&args));
        assert!(
            stdout(&out).contains("/dev/pts/0\r\nexec-it\r\n"),
            "{who:?}: {}",
            describe(&out)
        );
        expect_success(&p.run(&["kill", "-s", "USR1", "k1"]));
        wait_until("the trap's output", || {
            stdout(&p.run(&["logs", "k1"])) == "got USR1\n"
        });
        expect_success(&p.run(&["kill", "k1"]));
        let status = expect_success(&p.run(&["inspect", "-f", "{{.State.ExitCode}}", "k1"]));
        assert_eq!(status, "137\n", "{who:?}: SIGKILL by default");
        expect_success(&p.run(&["rm", "k1"]));

        // --rootfs: a directory of the user's, not an image.
        let rootfs = busybox_rootfs();
        args = vec!["run", "--rm"];
        args.extend(UNCONFINED);
        let rootfs_arg = rootfs.path_arg();
        args.extend([
            "--rootfs",
            &rootfs_arg,
            "sh",
            "-c",
            "echo from the directory",
        ]);
        let out = p.run(&args);
        assert_eq!(
            stdout(&out),
            "from the directory\n",
            "{who:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn podman_publishes_a_port_rootless() {
    let p = Podman::new(As::User);
    let port = 20000 + std::process::id() % 20000;
    let publish = format!("127.0.0.1:{port}:80");
    let server = "mkdir /www && echo hello-web >/www/index.html && exec httpd -f -p 80 -h /www";
    let out = p.run(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "--security-opt",
        "seccomp=unconfined",
        "localhost/bb",
        "sh",
        "-c",
        server,
    ]);
    expect_success(&out);
    let url = format!("http://127.0.0.1:{port}/");
    let mut page = String::new();
    wait_until("the published port", || {
        page = stdout(&sh(
            As::User,
            &format!("timeout 5 busybox wget -q -O - {url}"),
        ));
        !page.is_empty()
    });
    assert_eq!(page, "hello-web\n");
    expect_success(&p.run(&["rm", "-f", "-t", "0", "web"]));
}

#[test]
fn hooks_run_in_order_with_the_state_and_their_timeout() {
    for who in whos() {
        let rootfs_dir = std::cell::RefCell::new(String::new());
        let b = Bundle::new(who, "echo ran", |spec| {
            spec["root"]["readonly"] = Value::from(false);
            *rootfs_dir.borrow_mut() = spec["root"]["path"].as_str().unwrap().to_string();
        });
        let hook = |file: String| {
            serde_json::json!([{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("cat >{file}; echo >>{file}")]
            }])
        };
        let config = b.dir.join("config.json");
        let mut spec: Value = serde_json::from_str(&read(&config)).unwrap();
        let out = |stage: &str| b.dir.arg(format!("hook.{stage}"));
        spec["hooks"] = serde_json::json!({
            "prestart": hook(out("prestart")),
            "createRuntime": hook(out("createRuntime")),
            "createContainer": hook(out("createContainer")),
            // After the pivot: a path of the container's.
            "startContainer": hook("/tmp/hook.startContainer".into()),
            "poststart": hook(out("poststart")),
            "poststop": hook(out("poststop")),
        });
        fs::write(&config, spec.to_string()).unwrap();
        assert_eq!(code(&b.create("h1")), 0, "{who:?}: {}", b.errors());
        let pid: i64 = read(&b.dir.join("pid")).parse().unwrap();
        expect_success(&b.oci(&["start", "h1"]));
        wait_until("the container to stop", || b.status("h1") == "stopped");
        expect_success(&b.oci(&["delete", "h1"]));
        let rootfs = PathBuf::from(rootfs_dir.borrow().clone());
        for (stage, status) in [
            ("prestart", "created"),
            ("createRuntime", "created"),
            ("createContainer", "created"),
            ("startContainer", "created"),
            ("poststart", "running"),
            ("poststop", "stopped"),
        ] {
            let file = match stage {
                "startContainer" => rootfs.join("tmp/hook.startContainer"),
                _ => b.dir.join(format!("hook.{stage}")),
            };
            let state: Value = serde_json::from_str(&read(&file))
                .unwrap_or_else(|e| panic!("{who:?}: {stage}: {e}"));
            assert_eq!(state["id"], "h1", "{who:?}: {stage}: {state}");
            assert_eq!(state["status"], status, "{who:?}: {stage}: {state}");
            assert_eq!(state["pid"], pid, "{who:?}: {stage}: {state}");
            assert_eq!(state["bundle"], b.dir.path().to_str().unwrap());
        }
        assert_eq!(b.output(), "ran\n");

        // A hook that outlives its timeout fails create, which leaves nothing behind.
        spec["hooks"] = serde_json::json!({
            "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]
        });
        fs::write(&config, spec.to_string()).unwrap();
        assert_eq!(code(&b.create("h2")), 1);
        assert!(
            b.errors()
                .contains("hooks.createRuntime[0] (/bin/sleep): timed out after 1 seconds"),
            "{who:?}: {}",
            b.errors()
        );
        assert!(!b.state_dir().join("h2").exists());
    }
}

#[test]
fn failing_poststart_and_poststop_hooks_are_warnings_and_the_next_hooks_run() {
    for who in whos() {
        let b = Bundle::new(who, "true", |_| {});
        let config = b.dir.join("config.json");
        let mut spec: Value = serde_json::from_str(&read(&config)).unwrap();
        let failing_then_writing = |stage: &str| {
            serde_json::json!([
                {"path": "/bin/false", "args": ["false"]},
                {"path": "/bin/sh", "args": ["sh", "-c", format!("echo ran >{}", b.dir.arg(stage))]}
            ])
        };
        spec["hooks"] = serde_json::json!({
            "poststart": failing_then_writing("poststart"),
            "poststop": failing_then_writing("poststop"),
        });
        fs::write(&config, spec.to_string()).unwrap();
        assert_eq!(code(&b.create("pf")), 0, "{who:?}: {}", b.errors());
        let start = b.oci(&["start", "pf"]);
        assert_eq!(code(&start), 0, "{who:?}: {}", describe(&start));
        assert!(
            stderr(&start)
                .contains("warning: hooks.poststart[0] (/bin/false): failed with status 1"),
            "{who:?}: {}",
            describe(&start)
        );
        assert_eq!(read(&b.dir.join("poststart")), "ran\n");
        wait_until("the container to stop", || b.status("pf") == "stopped");
        let delete = b.oci(&["delete", "pf"]);
        assert_eq!(code(&delete), 0, "{who:?}: {}", describe(&delete));
        assert!(
            stderr(&delete)
                .contains("warning: hooks.poststop[0] (/bin/false): failed with status 1"),
            "{who:?}: {}",
            describe(&delete)
        );
        assert_eq!(read(&b.dir.join("poststop")), "ran\n");
        assert!(!b.state_dir().join("pf").exists());
    }
}

#[test]
fn start_returns_once_the_command_runs_so_that_kill_reaches_it() {
    for who in whos() {
        let script = "trap 'echo got USR1; exit 0' USR1; while :; do sleep 0.05; done";
        let b = Bundle::new(who, script, |spec| {
            // A slow startContainer hook: the process is long in its own setup after start
            // answered, and a signal then would meet PID 1 without a handler and be lost.
            spec["hooks"] = serde_json::json!({
                "startContainer": [{"path": "/bin/sleep", "args": ["sleep", "0.5"]}]
            });
        });
        assert_eq!(code(&b.create("sig")), 0, "{who:?}: {}", b.errors());
        let pid: u32 = read(&b.dir.join("pid")).parse().unwrap();
        assert_eq!(comm(pid), "contain-oci");
        expect_success(&b.oci(&["start", "sig"]));
        assert_eq!(
            comm(pid),
            "sh",
            "{who:?}: start returned before the command ran"
        );
        // The command's own start is not the runtime's to wait for: sh, PID 1 of its PID
        // namespace, loses a USR1 that comes before its trap is set.
        wait_until("the command's USR1 trap", || catches(pid, libc::SIGUSR1));
        expect_success(&b.oci(&["kill", "sig", "USR1"]));
        wait_until("the container to stop", || b.status("sig") == "stopped");
        assert_eq!(b.output(), "got USR1\n", "{who:?}: {}", b.errors());
        expect_success(&b.oci(&["delete", "sig"]));
    }
}

/// True once process `pid` has a handler for `signal` (SigCgt in its status).
fn catches(pid: u32, signal: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// The file of a cgroup controller setting for process `pid`: cgroup v1's per-controller
/// hierarchy, or the v2 tree.
fn cgroup_file(pid: &str, v1: (&str, &str), v2: &str) -> PathBuf {
    let text = read(Path::new(&format!("/proc/{pid}/cgroup")));
    for line in text.lines() {
        let fields: Vec<&str> = line.splitn(3, ':').collect();
        if fields[1].split(',').any(|c| c == v1.0) {
            return PathBuf::from(format!("/sys/fs/cgroup/{}{}/{}", v1.0, fields[2], v1.1));
        }
        if fields[1].is_empty() && fields[0] == "0" && !Path::new("/sys/fs/cgroup/memory").exists()
        {
            return PathBuf::from(format!("/sys/fs/cgroup{}/{v2}", fields[2]));
        }
    }
    panic!("no cgroup of {pid} for {}: {text}", v1.0);
}

#[test]
fn podman_as_root_limits_memory_and_pids_in_the_containers_cgroup() {
    if !require(As::Root) {
        return;
    }
    let p = Podman::new(As::Root);
    let out = podman_run(
        &p,
        &[
            "-d",
            "--name",
            "lim",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
        ],
        &[
            "sh",
            "-c",
            "echo x >/dev/null && echo devices-ok; exec sleep 1000",
        ],
    );
    expect_success(&out);
    let pid = expect_success(&p.run(&["inspect", "-f", "{{.State.Pid}}", "lim"]));
    let pid = pid.trim().to_string();
    let memory = cgroup_file(&pid, ("memory", "memory.limit_in_bytes"), "memory.max");
    let pids = cgroup_file(&pid, ("pids", "pids.max"), "pids.max");
    assert_eq!(read(&memory).trim(), "67108864", "{}", memory.display());
    assert_eq!(read(&pids).trim(), "50", "{}", pids.display());
    wait_until("the container's output", || {
        stdout(&p.run(&["logs", "lim"])) == "devices-ok\n"
    });
    // A process exec'd into the container is in its cgroups too.
    let exec = expect_success(&p.run(&["exec", "lim", "cat", "/proc/self/cgroup"]));
    let own = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert_eq!(exec, own, "exec'd into other cgroups than the container's");
    expect_success(&p.run(&["rm", "-f", "-t", "0", "lim"]));
    assert!(
        !memory.parent().unwrap().exists(),
        "the cgroup outlived the container"
    );
}

#[test]
fn kill_all_signals_every_process_of_the_container() {
    for who in whos() {
        // Each process reports the signal; PID 1 waits for its child, then ends.
        let script =
            "sh -c 'trap \"echo child got USR1; exit 0\" USR1; while :; do sleep 0.05; done' & \
                      trap 'echo init got USR1' USR1; wait; wait; echo init done";
        let b = Bundle::new(who, script, |_| {});
        assert_eq!(code(&b.create("k")), 0, "{}", b.errors());
        expect_success(&b.oci(&["start", "k"]));
        // Both shells with their traps set (the sleeps have none): a USR1 before then would
        // be lost on PID 1, or end the child, whatever the runtime does.
        wait_until("both shells' USR1 traps", || {
            let ps = stdout(&b.oci(&["ps", "--format", "json", "k"]));
            serde_json::from_str::<Vec<u32>>(&ps).is_ok_and(|pids| {
                pids.iter()
                    .filter(|pid| catches(**pid, libc::SIGUSR1))
                    .count()
                    >= 2
            })
        });
        expect_success(&b.oci(&["kill", "--all", "k", "USR1"]));
        wait_until("the container to stop", || b.status("k") == "stopped");
        let out = b.output();
        assert!(out.contains("child got USR1\n"), "{who:?}: {out}");
        assert!(out.contains("init got USR1\n"), "{who:?}: {out}");
        expect_success(&b.oci(&["delete", "k"]));
    }
}

#[test]
fn seccomp_profile_binds_the_process_and_exec() {
    for who in whos() {
        let script = "grep Seccomp: /proc/self/status; mkdir /tmp/d 2>&1 || echo mkdir refused; \
                      touch /tmp/f && echo touch ok; exec sleep 1000";
        let b = Bundle::new(who, script, |spec| {
            spec["root"]["readonly"] = Value::from(false);
            spec["linux"]["seccomp"] = serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 1}]
            });
        });
        assert_eq!(code(&b.create("s")), 0, "{who:?}: {}", b.errors());
        expect_success(&b.oci(&["start", "s"]));
        wait_until("the container's output", || b.output().contains("touch ok"));
        assert_eq!(
            b.output(),
            "Seccomp:\t2\nmkdir: can't create directory '/tmp/d': Operation not permitted\n\
             mkdir refused\ntouch ok\n",
            "{who:?}"
        );
        let exec = b.oci(&["exec", "s", "mkdir", "/tmp/e"]);
        assert_eq!(
            code(&exec),
            1,
            "{who:?}: exec is bound too: {}",
            describe(&exec)
        );
        expect_success(&b.oci(&["delete", "--force", "s"]));
    }
}

#[test]
fn podman_applies_its_default_seccomp_profile_unless_unconfined() {
    for who in whos() {
        let p = Podman::new(who);
        let cmd = ["grep", "Seccomp:", "/proc/self/status"];
        let out = p.run(
            &[
                &["run", "--rm", "--network", "none", "localhost/bb"][..],
                &cmd,
            ]
            .concat(),
        );
        assert_eq!(stdout(&out), "Seccomp:\t2\n", "{who:?}: {}", describe(&out));
        let out = podman_run(&p, &["--rm"], &cmd);
        assert_eq!(stdout(&out), "Seccomp:\t0\n", "{who:?}: {}", describe(&out));
    }
}

#[test]
fn concurrent_creates_of_one_id_make_one_container_and_preserve_fds_passes_descriptors() {
    let b = Bundle::new(As::User, "echo through fd 3 >&3", |_| {});
    // Eight creates of the same ID at once: one wins, the others are refused whole.
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8; do \
           ({OCI} --root {state} create -b {bundle} --preserve-fds 1 same 3>{fd3} \
              >/dev/null 2>{dir}/err.$i; echo $? >{dir}/status.$i) & \
         done; wait",
        state = b.dir.arg("state"),
        bundle = b.dir.path_arg(),
        fd3 = b.dir.arg("fd3"),
        dir = b.dir.path_arg(),
    );
    expect_success(&sh(As::User, &script));
    let statuses: Vec<String> = (1..=8)
        .map(|i| read(&b.dir.join(format!("status.{i}"))).trim().to_string())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "0").count(),
        1,
        "{statuses:?}"
    );
    for i in 1..=8 {
        let err = read(&b.dir.join(format!("err.{i}")));
        assert!(
            err.is_empty() || err == "contain-oci: container \"same\" already exists\n",
            "{err}"
        );
    }
    expect_success(&b.oci(&["start", "same"]));
    wait_until("the container to stop", || b.status("same") == "stopped");
    assert_eq!(read(&b.dir.join("fd3")), "through fd 3\n");
    expect_success(&b.oci(&["delete", "same"]));
}

#[test]
fn create_killed_midway_leaves_no_process() {
    for who in whos() {
        let b = Bundle::new(who, "echo must not run", |spec| {
            // The hook's parent is create itself: it dies with the container's process held.
            spec["hooks"] = serde_json::json!({
                "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]
            });
        });
        let out = b.create("gone");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{who:?}: {}", b.errors());
        let marker = b.dir.path_arg();
        wait_until("no process of the killed create", || {
            !live_processes()
                .iter()
                .any(|p| p.state != 'Z' && p.cmdline.iter().any(|a| a.contains(&marker)))
        });
        assert_eq!(b.output(), "");
    }
}

#[test]
fn run_waits_for_the_process_relays_its_terminal_and_removes_the_container() {
    for who in whos() {
        let b = Bundle::new(who, "echo plain; exit 5", |_| {});
        let out = b.oci(&["run", "-b", &b.dir.path_arg(), "r1"]);
        assert_eq!(code(&out), 5, "{who:?}: {}", describe(&out));
        assert_eq!(stdout(&out), "plain\n");
        assert!(
            !b.state_dir().join("r1").exists(),
            "{who:?}: run left its state"
        );

        let b = Bundle::new(who, "tty; echo on the terminal; exit 6", |spec| {
            spec["process"]["terminal"] = Value::from(true);
        });
        let script = format!(
            "{OCI} --root {} run -b {} r2; echo status=$?",
            b.dir.arg("state"),
            b.dir.path_arg()
        );
        let out = on_terminal(who, &script);
        let text = stdout(&out);
        assert!(
            text.contains("/dev/pts/0\r\non the terminal\r\nstatus=6"),
            "{who:?}: {}",
            describe(&out)
        );
        assert!(
            !b.state_dir().join("r2").exists(),
            "{who:?}: run left its state"
        );
    }
}

#[test]
fn devices_are_made_by_root_and_bound_from_the_host_in_a_user_namespace() {
    for who in whos() {
        // Root makes the node config.json describes; a user namespace gets the host's node of
        // the same path bound.
        let (path, major, minor) = match who {
            As::Root => ("/dev/mynull", 1, 3),
            As::User => ("/dev/full", 1, 7),
        };
        let script = format!("stat -c '%t,%T %a' {path}; echo x >{path} && echo written");
        let b = Bundle::new(who, &script, |spec| {
            spec["linux"]["devices"] = serde_json::json!([{
                "path": path, "type": "c", "major": major, "minor": minor,
                "fileMode": 0o620, "uid": 0, "gid": 0
            }]);
        });
        assert_eq!(code(&b.create("dev")), 0, "{who:?}: {}", b.errors());
        expect_success(&b.oci(&["start", "dev"]));
        wait_until("the container to stop", || b.status("dev") == "stopped");
        let expected = match who {
            As::Root => "1,3 620\nwritten\n".to_string(),
            // The host's /dev/full keeps its own mode; writing to it fails (ENOSPC).
            As::User => format!(
                "1,7 {:o}\n",
                fs::metadata(path).unwrap().permissions().mode() & 0o777
            ),
        };
        assert_eq!(b.output(), expected, "{who:?}: {}", b.errors());
        expect_success(&b.oci(&["delete", "dev"]));
    }
}

#[test]
fn links_in_the_root_file_system_never_lead_a_mount_out_of_it() {
    for who in whos() {
        let outside = TempDir::new();
        let outside_path = outside.path_arg();
        let rootfs_path = std::cell::RefCell::new(PathBuf::new());
        let b = Bundle::new(who, "cat /etc/hosts", |spec| {
            let rootfs = PathBuf::from(spec["root"]["path"].as_str().unwrap());
            // etc is a link to a host directory, absolute: followed inside the root it is
            // ROOTFS/<that path>, never the host's.
            fs::remove_dir_all(rootfs.join("etc")).unwrap();
            std::os::unix::fs::symlink(&outside_path, rootfs.join("etc")).unwrap();
            *rootfs_path.borrow_mut() = rootfs;
            spec["mounts"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "destination": "/etc/hosts", "type": "bind", "source": "hosts",
                    "options": ["bind", "ro"]
                }));
        });
        b.dir.write("hosts", "127.0.0.1 bound\n");
        // Where the link leads inside the root there is nothing yet: refused, naming the link.
        assert_eq!(code(&b.create("l")), 1);
        assert!(
            b.errors().contains("a symbolic link to"),
            "{who:?}: {}",
            b.errors()
        );
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
        let inside = rootfs_path
            .borrow()
            .join(outside_path.trim_start_matches('/'));
        fs::create_dir_all(&inside).unwrap();
        std::process::Command::new("chown")
            .args(["-R", &format!("{}:{}", user().uid, user().gid)])
            .arg(rootfs_path.borrow().as_path())
            .status()
            .unwrap();
        assert_eq!(code(&b.create("l")), 0, "{who:?}: {}", b.errors());
        expect_success(&b.oci(&["start", "l"]));
        wait_until("the container to stop", || b.status("l") == "stopped");
        assert_eq!(b.output(), "127.0.0.1 bound\n", "{who:?}: {}", b.errors());
        expect_success(&b.oci(&["delete", "l"]));
        let left: Vec<_> = fs::read_dir(outside.path()).unwrap().collect();
        assert!(left.is_empty(), "{who:?}: the host directory got {left:?}");
        assert!(
            inside.join("hosts").exists(),
            "{who:?}: the mount point was not made inside"
        );
    }
}

#[test]
fn features_and_spec_documents() {
    let out = run(As::User, OCI, ["features"]);
    let features: Value = serde_json::from_str(&expect_success(&out)).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    let namespaces = features["linux"]["namespaces"].as_array().unwrap();
    for ns in ["user", "pid", "mount", "network", "ipc", "uts", "cgroup"] {
        assert!(namespaces.contains(&Value::from(ns)), "{ns}: {features}");
    }
    assert_eq!(features["linux"]["seccomp"]["enabled"], true);
    let caps = features["linux"]["capabilities"].as_array().unwrap();
    assert!(caps.contains(&Value::from("CAP_SYS_ADMIN")), "{features}");
    let hooks = features["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 6, "{features}");

    let dir = TempDir::new();
    expect_success(&run(
        As::User,
        OCI,
        ["spec", "--rootless", "-b", &dir.path_arg()],
    ));
    let spec: Value = serde_json::from_str(&read(&dir.join("config.json"))).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], user().uid);
    let again = run(As::User, OCI, ["spec", "-b", &dir.path_arg()]);
    assert!(expect_error(&again, OCI, 1).ends_with("exists already: remove it first"));
}
