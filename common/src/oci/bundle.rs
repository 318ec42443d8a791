//! The bundle: a directory with `config.json`, read into oci-spec's types and checked before
//! anything is made, so that a bad config is refused with the field it names and nothing left
//! behind.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A bundle's directory, its config and its root file system.
pub struct Bundle {
    /// The bundle's directory, absolute.
    pub dir: PathBuf,
    pub spec: Spec,
    /// `root.path`, absolute.
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Reads and checks `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("bundle {}", crate::errors::shown_os(dir.as_os_str())))?;
        let config = dir.join("config.json");
        let text =
            std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?;
        let spec = parse(&text).with_context(|| config.display().to_string())?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| anyhow!("{}: root: missing", config.display()))?;
        let rootfs = dir.join(root.path());
        let rootfs = std::fs::canonicalize(&rootfs)
            .with_context(|| format!("root.path {}", rootfs.display()))?;
        if !rootfs.is_dir() {
            bail!("root.path {}: Not a directory", rootfs.display());
        }
        check(&spec).with_context(|| config.display().to_string())?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Parses config.json text; a malformed one is refused naming the field (`process.user.uid:
/// invalid type: ...`).
pub fn parse(text: &[u8]) -> Result<Spec> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow!("{inner}")
        } else {
            anyhow!("{path}: {inner}")
        }
    })?;
    Ok(spec)
}

/// What a Linux container needs and what this runtime does not do, refused before anything
/// is made.
fn check(spec: &Spec) -> Result<()> {
    if !spec.version().starts_with("1.") {
        bail!(
            "ociVersion: '{}' is not a 1.x version of the runtime specification",
            spec.version()
        );
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow!("process: missing"))?;
    check_process(process, "process")?;
    for (i, mount) in spec.mounts().iter().flatten().enumerate() {
        if !mount.destination().is_absolute() {
            bail!(
                "mounts[{i}].destination: '{}' is not an absolute path",
                mount.destination().display()
            );
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            bail!(
                "linux.namespaces[{i}]: the {} namespace is listed twice",
                ns.typ()
            );
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                bail!(
                    "linux.namespaces[{i}].path: '{}' is not an absolute path",
                    path.display()
                );
            }
        }
    }
    let new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if !new_user && (linux.uid_mappings().is_some() || linux.gid_mappings().is_some()) {
        let listed = linux
            .uid_mappings()
            .iter()
            .chain(linux.gid_mappings())
            .flatten()
            .count();
        if listed > 0 {
            bail!("linux.uidMappings: given without a new user namespace in linux.namespaces");
        }
    }
    if linux.intel_rdt().is_some() {
        bail!("linux.intelRdt: not supported by this runtime");
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        bail!("linux.netDevices: not supported by this runtime");
    }
    if linux.memory_policy().is_some() {
        bail!("linux.memoryPolicy: not supported by this runtime");
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        bail!("linux.timeOffsets: not supported by this runtime");
    }
    if let Some(personality) = linux.personality() {
        use oci_spec::runtime::LinuxPersonalityDomain;
        if !matches!(
            personality.domain(),
            LinuxPersonalityDomain::PerLinux | LinuxPersonalityDomain::PerLinux32
        ) {
            bail!("linux.personality.domain: only LINUX and LINUX32 are supported");
        }
    }
    Ok(())
}

/// Checks a process (config.json's, or `exec --process`'s) where `field` names it.
pub fn check_process(process: &oci_spec::runtime::Process, field: &str) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() => {}
        _ => bail!("{field}.args: no command given"),
    }
    if !process.cwd().is_absolute() {
        bail!(
            "{field}.cwd: '{}' is not an absolute path",
            process.cwd().display()
        );
    }
    for (i, var) in process.env().iter().flatten().enumerate() {
        if !var.contains('=') {
            bail!("{field}.env[{i}]: '{var}' is not NAME=VALUE");
        }
    }
    if process.user().uid() == u32::MAX || process.user().gid() == u32::MAX {
        bail!("{field}.user: (uid_t)-1 is no user");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_fields_are_named() {
        let err =
            parse(br#"{"ociVersion":"1.0.2","process":{"user":{"uid":"x","gid":0},"cwd":"/"}}"#)
                .unwrap_err();
        assert!(err.to_string().starts_with("process.user.uid: "), "{err}");
    }

    #[test]
    fn relative_cwd_is_refused() {
        let spec = parse(
            br#"{"ociVersion":"1.0.2","root":{"path":"r"},"process":{"args":["sh"],"user":{"uid":0,"gid":0},"cwd":"x"}}"#,
        )
        .unwrap();
        let err = check(&spec).unwrap_err();
        assert_eq!(err.to_string(), "process.cwd: 'x' is not an absolute path");
    }
}
