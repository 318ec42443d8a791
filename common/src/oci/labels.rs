//! `process.apparmorProfile` and `process.selinuxLabel`: the security module's label the
//! process execs into, set just before the exec as runc does (the kernel applies an `exec`
//! attribute at the next execve). Engines ask for them whatever the host runs (CRI gives
//! every container a profile or label where the kubelet's node has one); on a host without
//! that module the request is ignored with a warning, as crun does.

use anyhow::{Context, Result};
use oci_spec::runtime::{Process, Spec};
use std::path::Path;

/// The labels to apply to one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    /// The AppArmor profile, where the host has AppArmor.
    apparmor: Option<String>,
    /// The SELinux process label, where the host has SELinux.
    selinux: Option<String>,
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// What `process` asks for that this host can apply; a warning for each request it cannot.
pub fn of(process: &Process) -> Labels {
    of_on_host(process, apparmor_enabled(), selinux_enabled(), &mut |m| {
        super::log::warn(m)
    })
}

/// `linux.mountLabel`: a warning where the host has no SELinux (mounts get no context option).
pub fn warn_mount_label(spec: &Spec) {
    let asked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_ref())
        .is_some_and(|l| !l.is_empty());
    if asked && !selinux_enabled() {
        super::log::warn("linux.mountLabel: ignored: this host has no SELinux");
    }
}

fn of_on_host(
    process: &Process,
    apparmor: bool,
    selinux: bool,
    warn: &mut dyn FnMut(&str),
) -> Labels {
    let mut labels = Labels::default();
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if apparmor {
            labels.apparmor = Some(profile.to_string());
        } else if profile != "unconfined" {
            warn("process.apparmorProfile: ignored: this host has no AppArmor");
        }
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if selinux {
            labels.selinux = Some(label.to_string());
        } else {
            warn("process.selinuxLabel: ignored: this host has no SELinux");
        }
    }
    labels
}

impl Labels {
    /// Sets the labels the next execve of this thread takes on.
    pub fn apply(&self) -> Result<()> {
        if let Some(profile) = &self.apparmor {
            let file = if Path::new("/proc/thread-self/attr/apparmor/exec").exists() {
                "/proc/thread-self/attr/apparmor/exec"
            } else {
                "/proc/thread-self/attr/exec"
            };
            std::fs::write(file, format!("exec {profile}"))
                .with_context(|| format!("process.apparmorProfile: setting {profile}"))?;
        }
        if let Some(label) = &self.selinux {
            std::fs::write("/proc/thread-self/attr/exec", label)
                .with_context(|| format!("process.selinuxLabel: setting {label}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(json: &str) -> Process {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn labels_are_kept_where_the_host_has_the_module_and_warned_about_elsewhere() {
        let p = process(
            r#"{"cwd": "/", "user": {"uid": 0, "gid": 0}, "apparmorProfile": "cri-containerd.apparmor.d",
                "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2"}"#,
        );
        let mut warnings = Vec::new();
        let none = of_on_host(&p, false, false, &mut |m| warnings.push(m.to_string()));
        assert_eq!(none, Labels::default());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("no AppArmor"));
        assert!(warnings[1].contains("no SELinux"));
        let mut quiet = Vec::new();
        let both = of_on_host(&p, true, true, &mut |m| quiet.push(m.to_string()));
        assert!(quiet.is_empty());
        assert_eq!(both.apparmor.as_deref(), Some("cri-containerd.apparmor.d"));
        assert!(both.selinux.is_some());
        let unconfined = process(
            r#"{"cwd": "/", "user": {"uid": 0, "gid": 0}, "apparmorProfile": "unconfined"}"#,
        );
        let mut none_said = Vec::new();
        of_on_host(&unconfined, false, false, &mut |m| {
            none_said.push(m.to_string())
        });
        assert!(none_said.is_empty(), "unconfined needs no AppArmor");
    }
}
