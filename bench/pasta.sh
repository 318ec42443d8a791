#!/usr/bin/env bash
# What `contain --net pasta` costs next to pasta alone, timed by hyperfine.
#
# `contain -c --net pasta DIR /bin/true` (every namespace of a container, pasta started on the
# held init, waited for until the network is configured, ended and reaped when init ends)
# beside `pasta --config-net -- /bin/true` (the reference: pasta making its own user and
# network namespaces and running the command). The target is contain within 1.1x of pasta
# alone: the container's other namespaces must cost almost nothing next to pasta's own start.
#
# Runs as BENCH_USER (default contain-test, which the tests create when run as root) when
# started as root, else as the caller. DIR is a busybox root file system made here.
#
# Usage: bench/pasta.sh
# Environment: CONTAIN (default: the static release build of bench/build.sh, built here), RUNS
# (default 50), BENCH_USER. Needs the Debian packages hyperfine, passt, busybox-static and
# uidmap, and /dev/net/tun usable by the user (mode 0666, as udev makes it).
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-50}
need "hyperfine passt uidmap busybox-static" hyperfine pasta newuidmap /bin/busybox
CONTAIN=${CONTAIN:-$(release_dir -p contain)/contain}
unprivileged_user
contain_bench pasta
reference='pasta --config-net -- /bin/true'
hyperfine_export "$work/pasta" 3 "$runs" "${run_as[@]}" :: \
    "$reference" "pasta --config-net -q -- /bin/true" \
    'contain -c --net pasta DIR /bin/true' "$contain -c --net pasta $dir /bin/true" \
    'contain -c DIR /bin/true (private network)' "$contain -c $dir /bin/true"
echo
echo "start-up with pasta (mean, ratio to '$reference'; target: contain <= 1.1x):"
print_means "$work/pasta.csv" "$reference"
echo
echo "exports: $work/pasta.{json,csv}"
