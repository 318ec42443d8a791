//! contain-oci under containerd: the runc v2 shim (`io.containerd.runc.v2`) drives it as it
//! drives runc, with `ctr run --runc-binary`, beside crun as the reference runtime. As root
//! only (containerd is a root daemon here), each test starts a containerd of its own.
//!
//! Each containerd runs in a private mount namespace (`unshare -m`) with an empty tmpfs on
//! /run, so that it and its shims never reach the host's /run/containerd, and (on a hybrid
//! cgroup host) an empty tmpfs over the cgroup v2 mount, which crun refuses to work beside
//! (see the OCI section of the kernel notes): the runtimes then see cgroup v1 alone. Its root,
//! state, sockets and the runtimes' state directories are in a temporary directory, the
//! image is a busybox built by the test as an OCI image layout and imported with
//! `ctr image import`: no registry, nothing of the host's containerd.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use tests::*;

const OCI: &str = "contain-oci";
const IMAGE: &str = "localhost/busybox:latest";

/// The runtimes the shim is given: ours and crun, whose behaviour is the reference.
fn runtimes() -> Vec<(&'static str, PathBuf)> {
    vec![(OCI, bin(OCI)), ("crun", PathBuf::from("/usr/bin/crun"))]
}

/// A containerd of the test's own, stopped (with what it ran) when dropped.
struct Containerd {
    dir: TempDir,
    /// The containerd namespace, also the first component of each container's cgroupsPath.
    namespace: String,
    daemon: Option<Running>,
}

/// The v1 hierarchies and the v2 mount a runtime may have made cgroups in.
fn cgroup_roots() -> Vec<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let mount_point = before.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

impl Containerd {
    fn start() -> Option<Containerd> {
        if !require(As::Root) {
            return None;
        }
        assert!(
            Path::new("/usr/bin/containerd").exists() && Path::new("/usr/bin/crun").exists(),
            "containerd or crun is not installed (.ci/run installs them: apt-get install \
             containerd crun)"
        );
        let dir = TempDir::new();
        let d = dir.path().display();
        dir.write(
            "config.toml",
            format!(
                "version = 2\n\
                 root = \"{d}/root\"\n\
                 state = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
            ),
        );
        let script = format!(
            "set -e\n\
             mount -t tmpfs -o size=4m,mode=0755 tmpfs /run\n\
             if grep -q ' /sys/fs/cgroup/unified cgroup2 ' /proc/self/mounts; then\n\
             \x20 mount -t tmpfs -o size=64k tmpfs /sys/fs/cgroup/unified\n\
             fi\n\
             mount --make-rshared /\n\
             exec containerd --config {d}/config.toml >{d}/containerd.log 2>&1\n"
        );
        let daemon = spawn(sh_command(
            As::Root,
            &format!(
                "exec unshare -m --propagation private sh -c {}",
                shell_quote(&script)
            ),
        ));
        let containerd = Containerd {
            namespace: format!("contain-tests-{}", unique_token()),
            dir,
            daemon: Some(daemon),
        };
        wait_until("containerd to serve", || {
            containerd.dir.join("containerd.sock").exists()
                && containerd.ctr(&["version"]).status.success()
        });
        containerd.import_busybox();
        Some(containerd)
    }

    /// `ctr` with this containerd's socket and namespace.
    fn ctr(&self, args: &[&str]) -> Output {
        let mut words = vec![
            "exec".to_string(),
            "ctr".into(),
            "-a".into(),
            self.dir.arg("containerd.sock"),
            "-n".into(),
            self.namespace.clone(),
        ];
        words.extend(args.iter().map(|a| shell_quote(a)));
        sh(As::Root, &words.join(" "))
    }

    /// `ctr run` with `runtime` as the shim's runc binary; its state directory and the I/O
    /// FIFOs in the test's directory.
    fn run(&self, runtime: &Path, options: &[&str], id: &str, cmd: &[&str]) -> Output {
        let mut args = vec![
            "run".to_string(),
            "--fifo-dir".into(),
            self.dir.arg("fifo"),
            "--runc-binary".into(),
            runtime.to_str().unwrap().into(),
            "--runc-root".into(),
            self.dir.arg("runc"),
        ];
        args.extend(options.iter().map(|o| o.to_string()));
        args.push(IMAGE.into());
        args.push(id.into());
        args.extend(cmd.iter().map(|c| c.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ctr(&args)
    }

    /// `ctr task exec` of `cmd` in task `id`.
    fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> Output {
        let fifo_dir = self.dir.arg("fifo");
        let mut args = vec![
            "task",
            "exec",
            "--fifo-dir",
            &fifo_dir,
            "--exec-id",
            exec_id,
            id,
        ];
        args.extend(cmd);
        self.ctr(&args)
    }

    /// The PID and status `ctr task ls` shows for a task.
    fn task(&self, id: &str) -> Option<(u32, String)> {
        let list = expect_success(&self.ctr(&["task", "ls"]));
        list.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.first() == Some(&id)).then(|| (fields[1].parse().unwrap(), fields[2].into()))
        })
    }

    /// The PIDs `ctr task ps` lists.
    fn task_pids(&self, id: &str) -> Vec<u32> {
        let out = expect_success(&self.ctr(&["task", "ps", id]));
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// The container's cgroup in the v1 hierarchy of `controller` on the host (ctr makes
    /// cgroupsPath /NAMESPACE/ID).
    fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.namespace)
            .join(id)
    }

    /// Writes busybox as an OCI image layout (a tar layer, its config and manifest, named in
    /// index.json) and imports that archive.
    fn import_busybox(&self) {
        let rootfs = busybox_rootfs();
        let layout = self.dir.mkdir("image");
        let blobs = self.dir.mkdir("image/blobs/sha256");
        let layer = self.dir.join("layer.tar");
        expect_success(&sh(
            As::Root,
            &format!(
                "tar --numeric-owner --owner=0 --group=0 -C {} -cf {} .",
                rootfs.path_arg(),
                path_str(&layer)
            ),
        ));
        let layer_blob = fs::read(&layer).unwrap();
        let (layer_digest, layer_size) = store_blob(&blobs, &layer_blob);
        let config = format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Env\":[\"PATH=/bin\"],\
             \"Cmd\":[\"sh\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"sha256:{layer_digest}\"]}}}}"
        );
        let (config_digest, config_size) = store_blob(&blobs, config.as_bytes());
        let manifest = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
             \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\
             \"digest\":\"sha256:{config_digest}\",\"size\":{config_size}}},\
             \"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\
             \"digest\":\"sha256:{layer_digest}\",\"size\":{layer_size}}}]}}"
        );
        let (manifest_digest, manifest_size) = store_blob(&blobs, manifest.as_bytes());
        fs::write(
            layout.join("index.json"),
            format!(
                "{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\
                 \"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:{manifest_digest}\",\
                 \"size\":{manifest_size},\"annotations\":{{\"io.containerd.image.name\":\"{IMAGE}\"}},\
                 \"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\"}}}}]}}"
            ),
        )
        .unwrap();
        fs::write(
            layout.join("oci-layout"),
            "{\"imageLayoutVersion\":\"1.0.0\"}",
        )
        .unwrap();
        let archive = self.dir.join("busybox-oci.tar");
        expect_success(&sh(
            As::Root,
            &format!("tar -C {} -cf {} .", path_str(&layout), path_str(&archive)),
        ));
        expect_success(&self.ctr(&["image", "import", &path_str(&archive)]));
    }
}

impl Drop for Containerd {
    /// Ends every task and container of the namespace (their shims exit then), stops
    /// containerd (by its PID), and removes the namespace's cgroups the runtimes left.
    fn drop(&mut self) {
        let tasks = stdout(&self.ctr(&["task", "ls", "-q"]));
        for id in tasks.lines() {
            let _ = self.ctr(&["task", "rm", "-f", id]);
        }
        let containers = stdout(&self.ctr(&["container", "ls", "-q"]));
        for id in containers.lines() {
            let _ = self.ctr(&["container", "rm", id]);
        }
        if let Some(daemon) = self.daemon.take() {
            daemon.signal(nix::sys::signal::Signal::SIGTERM);
            let _ = daemon.finish_within(std::time::Duration::from_secs(20));
        }
        for root in cgroup_roots() {
            let _ = fs::remove_dir(root.join(&self.namespace));
        }
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// Stores `data` as a blob named by its SHA-256 (coreutils' sha256sum); returns the digest in
/// hex and the size.
fn store_blob(blobs: &Path, data: &[u8]) -> (String, usize) {
    let staged = blobs.join("staged");
    fs::write(&staged, data).unwrap();
    let out = expect_success(&sh(As::Root, &format!("sha256sum {}", path_str(&staged))));
    let digest = out.split_whitespace().next().unwrap().to_string();
    fs::rename(&staged, blobs.join(&digest)).unwrap();
    (digest, data.len())
}

#[test]
fn ctr_run_rm_gives_the_output_and_exit_status_in_the_containers_cgroup() {
    let Some(cd) = Containerd::start() else {
        return;
    };
    for (name, runtime) in runtimes() {
        let id = format!("rm-{name}");
        let out = cd.run(
            &runtime,
            &["--rm"],
            &id,
            &[
                "sh",
                "-c",
                "echo out; echo err >&2; grep -E ':(memory|pids):' /proc/self/cgroup; exit 3",
            ],
        );
        assert_eq!(code(&out), 3, "{name}: {}", describe(&out));
        let expected_cgroup = format!("/{}/{id}", cd.namespace);
        let text = stdout(&out);
        assert!(text.starts_with("out\n"), "{name}: {text:?}");
        for controller in ["memory", "pids"] {
            assert!(
                text.contains(&format!(":{controller}:{expected_cgroup}\n")),
                "{name}: not in {expected_cgroup}: {text:?}"
            );
        }
        assert!(stderr(&out).contains("err\n"), "{name}: {}", describe(&out));
        assert!(cd.task(&id).is_none(), "{name}: the task is left");
        assert!(
            !cd.cgroup_dir("memory", &id).exists(),
            "{name}: the cgroup is left after --rm"
        );
    }
}

#[test]
fn ctr_task_exec_ps_pause_resume_kill_and_delete() {
    let Some(cd) = Containerd::start() else {
        return;
    };
    for (name, runtime) in runtimes() {
        let id = format!("life-{name}");
        let script = "sleep 1000 & trap 'exit 0' TERM; while :; do sleep 0.1; done";
        let out = cd.run(&runtime, &["-d", "--null-io"], &id, &["sh", "-c", script]);
        expect_success(&out);
        let (pid, status) = cd.task(&id).expect("the task is listed");
        assert_eq!(status, "RUNNING", "{name}");

        let exec = cd.exec(
            &id,
            "e1",
            &["sh", "-c", "echo beside $(cat /proc/1/comm); exit 4"],
        );
        assert_eq!(code(&exec), 4, "{name}: {}", describe(&exec));
        assert_eq!(stdout(&exec), "beside sh\n", "{name}");

        let pids = wait_for("the container's sleeper", || {
            let pids = cd.task_pids(&id);
            (pids.len() >= 2).then_some(pids)
        });
        assert!(pids.contains(&pid), "{name}: {pids:?} lacks {pid}");
        let sleeper = *pids
            .iter()
            .find(|p| comm(**p) == "sleep" && process(**p).is_some_and(|p| p.ppid == pid))
            .unwrap_or_else(|| panic!("{name}: no sleep 1000 among {pids:?}"));

        // The shim's statistics come from the cgroup it found through /proc/PID/cgroup.
        let metrics = expect_success(&cd.ctr(&["task", "metrics", &id]));
        assert!(
            metrics.contains("memory.usage_in_bytes") || metrics.contains("memory.usage"),
            "{name}: {metrics}"
        );
        assert!(metrics.contains("pids.current"), "{name}: {metrics}");

        expect_success(&cd.ctr(&["task", "pause", &id]));
        assert_eq!(cd.task(&id).unwrap().1, "PAUSED", "{name}");
        // crun may answer while the kernel still says FREEZING.
        let freezer_state = cd.cgroup_dir("freezer", &id).join("freezer.state");
        wait_until("the freezer to say FROZEN", || {
            read(&freezer_state) == "FROZEN\n"
        });
        expect_success(&cd.ctr(&["task", "resume", &id]));
        assert_eq!(cd.task(&id).unwrap().1, "RUNNING", "{name}");
        let exec = cd.exec(&id, "e2", &["true"]);
        expect_success(&exec);

        expect_success(&cd.ctr(&["task", "kill", &id]));
        wait_until("the task to stop", || {
            cd.task(&id).is_some_and(|(_, s)| s == "STOPPED")
        });
        assert!(!process_alive(sleeper), "{name}: the sleeper outlived init");
        expect_success(&cd.ctr(&["task", "rm", &id]));
        expect_success(&cd.ctr(&["container", "rm", &id]));
        assert!(
            !cd.cgroup_dir("memory", &id).exists(),
            "{name}: the cgroup is left after delete"
        );
    }
}

#[test]
fn ctr_task_kill_all_ends_every_process() {
    let Some(cd) = Containerd::start() else {
        return;
    };
    for (name, runtime) in runtimes() {
        let id = format!("all-{name}");
        let script = "sleep 1000 & sleep 1001 & while :; do sleep 0.1; done";
        expect_success(&cd.run(&runtime, &["-d", "--null-io"], &id, &["sh", "-c", script]));
        let pids = wait_for("the sleepers", || {
            let pids = cd.task_pids(&id);
            (pids.len() >= 3).then_some(pids)
        });
        expect_success(&cd.ctr(&["task", "kill", "--all", "-s", "KILL", &id]));
        wait_until("the task to stop", || {
            cd.task(&id).is_some_and(|(_, s)| s == "STOPPED")
        });
        for pid in pids {
            assert!(!process_alive(pid), "{name}: {pid} outlived kill --all");
        }
        expect_success(&cd.ctr(&["task", "rm", &id]));
    }
}

/// A bundle for contain-oci run directly as root, with a cgroupsPath below a parent cgroup of
/// the test's own (removed, in every hierarchy, on drop).
struct CgroupBundle {
    dir: TempDir,
    _rootfs: TempDir,
    parent: String,
}

impl CgroupBundle {
    fn new(script: &str, tweak: impl FnOnce(&mut serde_json::Value)) -> Option<CgroupBundle> {
        if !require(As::Root) {
            return None;
        }
        let rootfs = busybox_rootfs_of(As::Root);
        let dir = TempDir::new();
        expect_success(&run(As::Root, OCI, ["spec", "-b", &dir.path_arg()]));
        let config = dir.join("config.json");
        let mut spec: serde_json::Value = serde_json::from_str(&read(&config)).unwrap();
        let parent = format!("contain-tests-{}", unique_token());
        spec["root"]["path"] = rootfs.path_arg().into();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        spec["linux"]["cgroupsPath"] = format!("/{parent}/c").into();
        tweak(&mut spec);
        fs::write(&config, spec.to_string()).unwrap();
        dir.mkdir("state");
        Some(CgroupBundle {
            dir,
            _rootfs: rootfs,
            parent,
        })
    }

    fn oci(&self, args: &[&str]) -> Output {
        let mut all = vec!["--root".to_string(), self.dir.arg("state")];
        all.extend(args.iter().map(|a| a.to_string()));
        run(As::Root, OCI, &all)
    }

    /// `contain-oci ARGS` with `input` on its stdin.
    fn oci_with_input(&self, input: &str, args: &[&str]) -> Output {
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        sh(
            As::Root,
            &format!(
                "printf %s {} | exec {OCI} --root {} {}",
                shell_quote(input),
                self.dir.arg("state"),
                quoted.join(" ")
            ),
        )
    }

    fn create(&self, id: &str) -> u32 {
        let out = sh(
            As::Root,
            &format!(
                "exec {OCI} --root {} create -b {} --pid-file {} {id} >{} 2>&1",
                self.dir.arg("state"),
                self.dir.path_arg(),
                self.dir.arg("pid"),
                self.dir.arg("out"),
            ),
        );
        assert_eq!(code(&out), 0, "{}", read(&self.dir.join("out")));
        read(&self.dir.join("pid")).parse().unwrap()
    }

    fn status(&self, id: &str) -> String {
        let state: serde_json::Value =
            serde_json::from_str(&expect_success(&self.oci(&["state", id]))).unwrap();
        state["status"].as_str().unwrap().to_string()
    }

    fn pids(&self, id: &str) -> Vec<u32> {
        let out = expect_success(&self.oci(&["ps", "--format", "json", id]));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ps --format json: {e}: {out:?}"))
    }

    /// The container's cgroup path (`/PARENT/c`).
    fn path(&self) -> String {
        format!("/{}/c", self.parent)
    }
}

impl Drop for CgroupBundle {
    /// A test that failed half-way leaves its container running: it goes first (by the
    /// runtime, which ends its processes), then the test's cgroups.
    fn drop(&mut self) {
        let ids = stdout(&self.oci(&["list", "-q"]));
        for id in ids.lines() {
            let _ = self.oci(&["delete", "--force", id]);
        }
        for root in cgroup_roots() {
            let _ = fs::remove_dir(root.join(&self.parent).join("c"));
            let _ = fs::remove_dir(root.join(&self.parent));
        }
    }
}

/// The host directory of `pid`'s cgroup that has `controller` (v1), or its v2 cgroup where no
/// v1 hierarchy has it.
fn cgroup_of(pid: u32, controller: &str) -> PathBuf {
    let text = read(Path::new(&format!("/proc/{pid}/cgroup")));
    let v1 = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers.split(',').any(|c| c == controller).then(|| {
            Path::new("/sys/fs/cgroup")
                .join(controllers)
                .join(&path[1..])
        })
    });
    v1.unwrap_or_else(|| {
        let path = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        Path::new("/sys/fs/cgroup").join(&path[1..])
    })
}

/// One cgroup limit file of `pid`'s cgroup: the v1 name where v1 has the controller, else v2's.
fn limit(pid: u32, controller: &str, v1_file: &str, v2_file: &str) -> String {
    let dir = cgroup_of(pid, controller);
    let v1 = dir.join(v1_file);
    let file = if v1.exists() { v1 } else { dir.join(v2_file) };
    read(&file).trim().to_string()
}

#[test]
fn cgroups_hold_the_process_before_start_with_limits_update_pause_and_delete() {
    let resources = serde_json::json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000}
    });
    let script = "sleep 1000 & while :; do sleep 0.05; done";
    let Some(b) = CgroupBundle::new(script, |spec| {
        spec["linux"]["resources"] = resources;
    }) else {
        return;
    };
    let pid = b.create("c1");
    let cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    for controller in ["memory", "pids", "cpu", "freezer"] {
        assert!(
            cgroup
                .lines()
                .any(|l| l.contains(controller) && l.ends_with(&b.path())),
            "after create, {controller} is not {}: {cgroup}",
            b.path()
        );
    }
    assert_eq!(
        limit(pid, "memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(limit(pid, "pids", "pids.max", "pids.max"), "50");
    assert_eq!(
        limit(pid, "cpu", "cpu.cfs_quota_us", "cpu.max")
            .split(' ')
            .next(),
        Some("20000")
    );

    expect_success(&b.oci(&["start", "c1"]));
    let pids = wait_for("the sleeper", || {
        let pids = b.pids("c1");
        (pids.len() >= 2).then_some(pids)
    });
    assert_eq!(pids[0], pid, "ps lists the container's first process first");
    let container_cgroup = cgroup_of(pid, "memory");
    for p in &pids {
        // A `sleep 0.05` of the loop may have ended since ps listed it.
        let text = fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
        if process_alive(*p) {
            assert!(
                text.lines()
                    .any(|l| l.contains(":memory:") && l.ends_with(&b.path())),
                "{p} is not in the container's cgroup {}: {text}",
                container_cgroup.display()
            );
        }
    }
    // In the container's cgroup namespace, whose root is the container's cgroup: a process
    // anywhere else would see a path with "..".
    let exec = b.oci(&["exec", "c1", "cat", "/proc/self/cgroup"]);
    assert!(
        expect_success(&exec)
            .lines()
            .any(|l| l.ends_with(":memory:/")),
        "exec's process is outside the cgroup: {}",
        describe(&exec)
    );

    let update = b.oci_with_input(
        r#"{"memory": {"limit": 33554432}, "pids": {"limit": 40}}"#,
        &["update", "--resources", "-", "c1"],
    );
    expect_success(&update);
    assert_eq!(
        limit(pid, "memory", "memory.limit_in_bytes", "memory.max"),
        "33554432"
    );
    assert_eq!(limit(pid, "pids", "pids.max", "pids.max"), "40");
    let bad = b.oci_with_input("{\"memory\": 5}", &["update", "--resources", "-", "c1"]);
    let line = expect_error(&bad, OCI, 1);
    assert!(line.contains("not linux.resources JSON"), "{line}");

    expect_success(&b.oci(&["pause", "c1"]));
    assert_eq!(b.status("c1"), "paused");
    let freezer = cgroup_of(pid, "freezer");
    let frozen_state = if freezer.join("freezer.state").exists() {
        read(&freezer.join("freezer.state"))
    } else {
        read(&freezer.join("cgroup.freeze"))
    };
    assert!(
        matches!(frozen_state.trim(), "FROZEN" | "1"),
        "{frozen_state}"
    );
    let again = b.oci(&["pause", "c1"]);
    assert!(expect_error(&again, OCI, 1).contains("already paused"));
    expect_success(&b.oci(&["resume", "c1"]));
    assert_eq!(b.status("c1"), "running");
    let again = b.oci(&["resume", "c1"]);
    assert!(expect_error(&again, OCI, 1).contains("not paused"));

    // Paused, then killed: the processes still end (thawed after SIGKILL).
    let memory_dir = cgroup_of(pid, "memory");
    expect_success(&b.oci(&["pause", "c1"]));
    expect_success(&b.oci(&["kill", "c1", "KILL"]));
    wait_until("the container to stop", || b.status("c1") == "stopped");
    assert!(memory_dir.exists());
    expect_success(&b.oci(&["delete", "c1"]));
    assert!(!memory_dir.exists(), "delete left {}", memory_dir.display());
    for root in cgroup_roots() {
        assert!(
            !root.join(&b.parent).join("c").exists(),
            "left in {}",
            root.display()
        );
    }
}

#[test]
fn kill_all_reaches_what_outlives_the_first_process_of_a_shared_pid_namespace() {
    let token = unique_token();
    let script = format!("sleep 1000{token} & echo started");
    let Some(b) = CgroupBundle::new(&script, |spec| {
        let namespaces = spec["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "pid");
    }) else {
        return;
    };
    b.create("c2");
    expect_success(&b.oci(&["start", "c2"]));
    wait_until("the first process to end", || b.status("c2") == "stopped");
    let sleeper = wait_for_process("the sleeper", &["sleep", &format!("1000{token}")]);
    assert_eq!(
        b.pids("c2"),
        [sleeper],
        "ps lists what is left in the cgroup"
    );
    let single = b.oci(&["kill", "c2", "KILL"]);
    assert!(expect_error(&single, OCI, 1).contains("container not running"));
    assert!(process_alive(sleeper));
    expect_success(&b.oci(&["kill", "--all", "c2", "KILL"]));
    wait_until("the sleeper to end", || !process_alive(sleeper));
    let none = b.oci(&["kill", "--all", "c2", "KILL"]);
    assert!(expect_error(&none, OCI, 1).contains("container not running"));
    expect_success(&b.oci(&["delete", "c2"]));
}

#[test]
fn a_container_without_a_cgroup_cannot_be_paused_or_updated() {
    if !require(As::Root) {
        return;
    }
    let Some(b) = CgroupBundle::new("while :; do sleep 0.05; done", |spec| {
        spec["linux"]["cgroupsPath"] = "".into();
    }) else {
        return;
    };
    b.create("c3");
    expect_success(&b.oci(&["start", "c3"]));
    for args in [&["pause", "c3"][..], &["resume", "c3"]] {
        let line = expect_error(&b.oci(args), OCI, 1);
        assert!(line.contains("has no cgroup"), "{line}");
    }
    let update = b.oci_with_input("{}", &["update", "-r", "-", "c3"]);
    assert!(expect_error(&update, OCI, 1).contains("has no cgroup"));
    let missing = expect_error(&b.oci(&["pause", "nothing"]), OCI, 1);
    assert!(missing.ends_with("does not exist"), "{missing}");
    expect_success(&b.oci(&["delete", "--force", "c3"]));
}

#[test]
fn systemd_cgroup_says_in_one_line_why_no_scope_is_made() {
    if Path::new("/run/systemd/system").exists() {
        skip("this host runs systemd: the scope is made");
        return;
    }
    let Some(b) = CgroupBundle::new("true", |spec| {
        spec["linux"]["cgroupsPath"] = "kubepods-besteffort-pod1.slice:cri-containerd:c5".into();
    }) else {
        return;
    };
    let out = b.oci(&["--systemd-cgroup", "create", "-b", &b.dir.path_arg(), "c5"]);
    let line = expect_error(&out, OCI, 1);
    assert!(line.contains("no systemd is reachable"), "{line}");
    assert!(line.contains("--systemd-cgroup"), "{line}");
    assert!(
        line.contains("the scope cri-containerd-c5.scope in kubepods-besteffort-pod1.slice"),
        "{line}"
    );
    assert!(
        !b.dir.join("state/c5").exists(),
        "a failed create left its state"
    );
}

/// The pod pattern CRI uses: a sandbox container, and a container that joins its network, IPC
/// and UTS namespaces by path.
#[test]
fn a_container_joins_its_sandboxs_namespaces_by_path() {
    let Some(cd) = Containerd::start() else {
        return;
    };
    for (name, runtime) in runtimes() {
        let sandbox = format!("pod-{name}");
        let loop_forever = ["sh", "-c", "while :; do sleep 0.1; done"];
        expect_success(&cd.run(&runtime, &["-d", "--null-io"], &sandbox, &loop_forever));
        let (pid, _) = cd.task(&sandbox).expect("the sandbox runs");
        let joined: Vec<String> = ["network:net", "ipc:ipc", "uts:uts"]
            .iter()
            .map(|spec| {
                let (kind, file) = spec.split_once(':').unwrap();
                format!("--with-ns={kind}:/proc/{pid}/ns/{file}")
            })
            .collect();
        let mut options: Vec<&str> = vec!["--rm"];
        options.extend(joined.iter().map(String::as_str));
        let out = cd.run(
            &runtime,
            &options,
            &format!("app-{name}"),
            // The pause after printing: ctr may stop copying the output of a process that ends
            // right after writing it (a race known of containerd; one CI run got no output here
            // with status 0, its runtime not shown then: the length is checked below with it).
            &[
                "sh",
                "-c",
                "for ns in net ipc uts pid; do readlink /proc/self/ns/$ns; done; sleep 0.5",
            ],
        );
        let seen: Vec<String> = expect_success(&out).lines().map(str::to_string).collect();
        assert_eq!(seen.len(), 4, "{name}: {}", describe(&out));
        for (i, file) in ["net", "ipc", "uts"].iter().enumerate() {
            let sandbox_ns = fs::read_link(format!("/proc/{pid}/ns/{file}")).unwrap();
            assert_eq!(
                seen[i],
                sandbox_ns.to_str().unwrap(),
                "{name}: the {file} namespace is not the sandbox's"
            );
        }
        let sandbox_pid_ns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        assert_ne!(
            seen[3],
            sandbox_pid_ns.to_str().unwrap(),
            "{name}: its own PID namespace"
        );
        expect_success(&cd.ctr(&["task", "kill", "-s", "KILL", &sandbox]));
        wait_until("the sandbox to stop", || {
            cd.task(&sandbox).is_some_and(|(_, s)| s == "STOPPED")
        });
        expect_success(&cd.ctr(&["task", "rm", &sandbox]));
    }
}

/// A failed create reaches the user through the shim: the reason the runtime wrote to its
/// JSON log, not the shim's "unable to retrieve OCI runtime error".
#[test]
fn a_failed_create_shows_the_runtimes_reason_through_the_shim() {
    let Some(cd) = Containerd::start() else {
        return;
    };
    for (name, runtime) in runtimes() {
        let out = cd.run(
            &runtime,
            &["--rm"],
            &format!("bad-{name}"),
            &["/nosuch-command"],
        );
        assert_ne!(code(&out), 0, "{name}: {}", describe(&out));
        let text = stderr(&out);
        assert!(text.contains("nosuch-command"), "{name}: {text}");
        assert!(
            !text.contains("unable to retrieve OCI runtime error"),
            "{name}: the shim found no reason in the log: {text}"
        );
        assert!(
            cd.task(&format!("bad-{name}")).is_none(),
            "{name}: a task is left"
        );
    }
}

/// What a stand-in for systemd's manager was asked: each StartTransientUnit's unit, mode and
/// properties, the values as text (`b true`, `s text`, `t 5`, `a [u 1]`).
type Calls = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<(String, String)>)>>>;

/// systemd's manager as far as a runtime's scope needs it, on a private bus: it records the
/// request, makes the scope's cgroup in the name=systemd hierarchy with the processes moved in
/// (as systemd does), and ends the job before it answers with the job's path, as systemd's
/// jobs may: a runtime that subscribes to JobRemoved only after the call never sees the end.
/// A unit whose name starts with `taken` is refused, as systemd refuses a name in use.
struct FakeSystemd {
    calls: Calls,
    /// The units StopUnit was asked to stop.
    stopped: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    hierarchy: PathBuf,
    jobs: u32,
    /// The slice of each scope made, by unit.
    slices: HashMap<String, String>,
}

fn describe_value(value: &zbus::zvariant::Value) -> String {
    use zbus::zvariant::Value;
    match value {
        Value::Bool(b) => format!("b {b}"),
        Value::Str(s) => format!("s {s}"),
        Value::U64(n) => format!("t {n}"),
        Value::U32(n) => format!("u {n}"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(describe_value).collect();
            format!("a [{}]", items.join(","))
        }
        Value::Value(inner) => describe_value(inner),
        other => format!("? {other:?}"),
    }
}

impl FakeSystemd {
    /// A new job for `unit`, ended before its path is returned (as systemd's jobs may).
    async fn job_done(
        &mut self,
        emitter: &zbus::object_server::SignalEmitter<'_>,
        unit: &str,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedObjectPath> {
        self.jobs += 1;
        let job = zbus::zvariant::OwnedObjectPath::try_from(format!(
            "/org/freedesktop/systemd1/job/{}",
            self.jobs
        ))
        .unwrap();
        Self::job_removed(emitter, self.jobs, job.as_ref(), unit, "done").await?;
        Ok(job)
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeSystemd {
    fn subscribe(&self) {}

    async fn start_transient_unit(
        &mut self,
        name: String,
        mode: String,
        properties: Vec<(String, zbus::zvariant::OwnedValue)>,
        _auxiliary: Vec<(String, Vec<(String, zbus::zvariant::OwnedValue)>)>,
        #[zbus(signal_emitter)] emitter: zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedObjectPath> {
        let described: Vec<(String, String)> = properties
            .iter()
            .map(|(n, v)| (n.clone(), describe_value(v)))
            .collect();
        self.calls
            .lock()
            .unwrap()
            .push((name.clone(), mode, described));
        if name.starts_with("taken") {
            return Err(zbus::fdo::Error::Failed(format!(
                "Unit {name} was already loaded or has a fragment file."
            )));
        }
        let text = |key: &str| {
            properties
                .iter()
                .find(|(n, _)| n == key)
                .map(|(_, v)| v.try_clone().unwrap())
        };
        let slice: String = text("Slice").unwrap().try_into().unwrap();
        let pids: Vec<u32> = text("PIDs").unwrap().try_into().unwrap();
        let dir = self.hierarchy.join(&slice).join(&name);
        fs::create_dir_all(&dir).unwrap();
        for pid in pids {
            fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
        }
        self.slices.insert(name.clone(), slice);
        self.job_done(&emitter, &name).await
    }

    /// As systemd stops an empty scope: its cgroup goes.
    async fn stop_unit(
        &mut self,
        name: String,
        _mode: String,
        #[zbus(signal_emitter)] emitter: zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedObjectPath> {
        self.stopped.lock().unwrap().push(name.clone());
        if let Some(slice) = self.slices.remove(&name) {
            let _ = fs::remove_dir(self.hierarchy.join(slice).join(&name));
        }
        self.job_done(&emitter, &name).await
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        job: zbus::zvariant::ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// A dbus-daemon of the test's own on a socket in `dir`, ended when dropped.
struct PrivateBus {
    daemon: std::process::Child,
    address: String,
}

impl PrivateBus {
    fn start(dir: &TempDir) -> PrivateBus {
        let socket = dir.join("bus");
        let address = format!("unix:path={}", socket.display());
        let daemon = std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting dbus-daemon");
        wait_until("the private bus's socket", || socket.exists());
        PrivateBus { daemon, address }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Removes the test's slice directories (made by the stand-in systemd and the runtime) from
/// every hierarchy when dropped.
struct SliceDirs(String);

impl Drop for SliceDirs {
    fn drop(&mut self) {
        for root in cgroup_roots() {
            let _ = fs::remove_dir(root.join(&self.0));
        }
    }
}

/// `--systemd-cgroup` where systemd runs: a stand-in for systemd's manager on a private bus
/// (this machine's PID 1 is not systemd) gets StartTransientUnit with the scope, its slice,
/// Delegate, accounting, the engine's property annotations and the process's PID, and the
/// runtime waits for the job; the process is then in the scope in every hierarchy, with its
/// limits, before start. A scope systemd refuses fails create in one line, leaving nothing.
/// create runs in a mount namespace of the test's with /run/systemd/system on a tmpfs, and
/// DBUS_SYSTEM_BUS_ADDRESS naming the private bus.
#[test]
fn systemd_cgroup_has_systemd_make_the_scope_over_its_bus() {
    let hierarchy = PathBuf::from("/sys/fs/cgroup/systemd");
    if !hierarchy.join("cgroup.procs").exists() {
        skip("no cgroup v1 name=systemd hierarchy for the stand-in systemd to place scopes in");
        return;
    }
    if !Path::new("/usr/bin/dbus-daemon").exists() {
        skip("no dbus-daemon (Debian's dbus-daemon package)");
        return;
    }
    let token = unique_token();
    let slice = format!("containtests{token}.slice");
    let _slices = SliceDirs(slice.clone());
    let limit = 64 * 1024 * 1024;
    let tweak = |cgroups_path: String| {
        move |spec: &mut serde_json::Value| {
            spec["linux"]["cgroupsPath"] = cgroups_path.into();
            spec["linux"]["resources"] = serde_json::json!({"memory": {"limit": limit}});
            spec["annotations"] =
                serde_json::json!({"org.systemd.property.CollectMode": "'inactive-or-failed'"});
        }
    };
    let id = format!("s{token}");
    let Some(b) = CgroupBundle::new(
        "echo in the scope",
        tweak(format!("{slice}:contain-test:{id}")),
    ) else {
        return;
    };
    let bus = PrivateBus::start(&b.dir);
    let calls = Calls::default();
    let stopped = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let _systemd = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at(
            "/org/freedesktop/systemd1",
            FakeSystemd {
                calls: calls.clone(),
                stopped: stopped.clone(),
                hierarchy: hierarchy.clone(),
                jobs: 0,
                slices: HashMap::new(),
            },
        )
        .unwrap()
        .build()
        .unwrap();
    // `contain-oci ARGS` where systemd's bus is the private one, its output in out.
    let oci_on_bus = |bundle: &CgroupBundle, args: &str| {
        let inner = format!(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && \
             DBUS_SYSTEM_BUS_ADDRESS={} exec {OCI} --systemd-cgroup --root {} {args} >{} 2>&1",
            bus.address,
            bundle.dir.arg("state"),
            bundle.dir.arg("out"),
        );
        sh(
            As::Root,
            &format!("exec unshare -m sh -c {}", shell_quote(&inner)),
        )
    };
    let create = |bundle: &CgroupBundle, id: &str| {
        let args = format!(
            "create -b {} --pid-file {} {id}",
            bundle.dir.path_arg(),
            bundle.dir.arg("pid")
        );
        oci_on_bus(bundle, &args)
    };

    let out = create(&b, &id);
    assert_eq!(code(&out), 0, "{}", read(&b.dir.join("out")));
    let pid = read(&b.dir.join("pid"));
    let unit = format!("contain-test-{id}.scope");
    {
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        let (asked, mode, properties) = &calls[0];
        assert_eq!(asked, &unit);
        assert_eq!(mode, "fail");
        let property = |name: &str| {
            properties
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} in {properties:?}"))
        };
        assert_eq!(property("Slice"), format!("s {slice}"));
        assert_eq!(property("PIDs"), format!("a [u {pid}]"));
        assert_eq!(property("Delegate"), "b true");
        assert_eq!(property("DefaultDependencies"), "b false");
        assert_eq!(property("MemoryAccounting"), "b true");
        assert_eq!(property("CollectMode"), "s inactive-or-failed");
        assert!(property("Description").contains(&id), "{properties:?}");
    }
    let scope = format!("/{slice}/{unit}");
    let placed = read(Path::new(&format!("/proc/{pid}/cgroup")));
    for controller in ["name=systemd", "memory", "pids"] {
        assert!(
            placed.contains(&format!(":{controller}:{scope}\n")),
            "{controller} not {scope}: {placed}"
        );
    }
    assert_eq!(
        read(&PathBuf::from(format!(
            "/sys/fs/cgroup/memory{scope}/memory.limit_in_bytes"
        )))
        .trim(),
        limit.to_string()
    );
    expect_success(&b.oci(&["start", &id]));
    wait_until("the container to stop", || b.status(&id) == "stopped");
    let ran = read(&b.dir.join("out"));
    assert!(ran.contains("in the scope"), "{ran}");
    // delete has systemd stop the scope (a real systemd would keep it otherwise, once its
    // cgroup is gone before it saw it empty), and removes what is left.
    let out = oci_on_bus(&b, &format!("delete {id}"));
    assert_eq!(code(&out), 0, "{}", read(&b.dir.join("out")));
    assert_eq!(read(&b.dir.join("out")), "", "delete said something");
    assert_eq!(
        stopped.lock().unwrap().as_slice(),
        std::slice::from_ref(&unit)
    );
    for root in ["systemd", "memory"] {
        let dir = format!("/sys/fs/cgroup/{root}{scope}");
        assert!(!Path::new(&dir).exists(), "{dir} is left after delete");
    }

    // A scope systemd refuses: create fails in one line with systemd's reason, and leaves
    // neither state nor cgroup.
    let taken = format!("t{token}");
    let Some(refused) = CgroupBundle::new("true", tweak(format!("{slice}:taken:{taken}"))) else {
        return;
    };
    let out = create(&refused, &taken);
    assert_eq!(code(&out), 1, "{}", read(&refused.dir.join("out")));
    let text = read(&refused.dir.join("out"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].starts_with("contain-oci: --systemd-cgroup: making the scope taken-"),
        "{text}"
    );
    assert!(lines[0].contains("already loaded"), "{text}");
    assert!(!refused.dir.join(format!("state/{taken}")).exists());
    assert!(!Path::new(&format!(
        "/sys/fs/cgroup/memory/{slice}/taken-{taken}.scope"
    ))
    .exists());
    assert_eq!(calls.lock().unwrap().len(), 2);
    assert_eq!(
        stopped.lock().unwrap().len(),
        1,
        "a scope never made was stopped"
    );
}
