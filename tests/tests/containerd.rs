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

        expect_success(&cd.ctr(&["task", "pause", &id]));
        assert_eq!(cd.task(&id).unwrap().1, "PAUSED", "{name}");
        assert_eq!(
            read(&cd.cgroup_dir("freezer", &id).join("freezer.state")),
            "FROZEN\n",
            "{name}"
        );
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
