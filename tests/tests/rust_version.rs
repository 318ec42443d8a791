//! The workspace's declared rust-version is one every locked package, dev-dependencies
//! included, builds with: `make check` needs no newer Rust than Cargo.toml says.

use std::process::Command;

/// "1.88" or "1.88.0" as comparable numbers.
fn version(text: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = text.split('.').map(|p| p.parse().unwrap()).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn no_locked_package_needs_a_newer_rust_than_declared() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .expect("Cargo.toml declares a rust-version")
        .trim_matches('"');
    // The packages built here: the others (r-efi for UEFI...) need not even be downloaded.
    let libc = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    let platform = format!("{}-unknown-linux-{libc}", std::env::consts::ARCH);
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &platform])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata = String::from_utf8(out.stdout).unwrap();
    // Each package object names its manifest_path (once) before its rust_version: no JSON
    // crate is needed for that.
    let mut newer = Vec::new();
    let mut name = "";
    for field in metadata.split(",\"") {
        if let Some(value) = field.strip_prefix("manifest_path\":\"") {
            let manifest = value.split('"').next().unwrap();
            name = manifest.rsplit('/').nth(1).unwrap();
        } else if let Some(value) = field.strip_prefix("rust_version\":\"") {
            let needed = value.split('"').next().unwrap();
            if version(needed) > version(declared) {
                newer.push(format!("{name} needs {needed}"));
            }
        }
    }
    assert!(
        newer.is_empty(),
        "rust-version {declared} declared, but {}",
        newer.join(", ")
    );
}
