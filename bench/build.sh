#!/usr/bin/env bash
# Builds the release binaries the benchmarks time and prints the directory that holds them:
# the same build as `make` (see the Makefile), static against musl when Rust's musl target is
# installed, else against glibc, not position-independent.
#
# The build is static (crt-static): profiling found a quarter to a third of the tools' start-up
# in the dynamic loader (relocations and symbol lookup); without it they start as fast as
# unshare and nsenter. The target is given explicitly because crt-static without
# --target also applies to proc-macros (clap_derive), which cannot be linked statically; with
# --target, RUSTFLAGS reach only the target's crates.
#
# The tools do not use glibc's NSS (common::idmap reads /etc/passwd itself), which a static
# binary could only load through dlopen; so these binaries are fine to install as well.
#
# Usage: bench/build.sh [CARGO-BUILD-ARGS...]   (e.g. -p pseudo; default: pseudo, contain, inject)
# Prints: target/<target triple>/release (relative to the checkout). Cargo's output goes to stderr.
set -euo pipefail

cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- -p pseudo -p contain -p inject
host=$(rustc -vV | sed -n 's/^host: //p')
target=${host/-gnu/-musl}
[ -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ] || target=$host
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --locked --target "$target" "$@" >&2
echo "target/$target/release"
