#!/usr/bin/env bash
# How fast `contain` starts a container and relays its console, timed by hyperfine.
#
#   1. Start-up: `contain -c DIR /bin/true` beside `unshare -Urmpfiun --mount-proc true` (the
#      reference: the same namespaces but cgroup and time, no root file system) and bwrap with
#      every namespace and DIR as its root. contain runs twice: with its default maps
#      (subordinate ranges, written by newuidmap/newgidmap) and with only the user's own IDs,
#      which is what unshare -Ur maps. `unshare --map-auto` shows what the helpers cost unshare.
#   2. Console relay: `contain DIR cat /big` (SIZE_MB of random bytes, through the container's
#      pty) beside `script -qc 'cat big' /dev/null` (the reference: the same busybox cat
#      through script's pty) and `contain -c` (no pty), all into /dev/null; as MB/s.
#
# Everything runs as BENCH_USER (default contain-test, which the tests create when run as root)
# when started as root, else as the caller. DIR is a busybox root file system made here.
#
# Usage: bench/contain.sh
# Environment: CONTAIN (default: the static release build of bench/build.sh, built here), RUNS
# (default 300), RELAY_RUNS (default 10), SIZE_MB (default 200), BENCH_USER.
# Needs the Debian packages hyperfine, bubblewrap, busybox-static and uidmap. The JSON and CSV
# exports stay in the printed directory.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-300}
relay_runs=${RELAY_RUNS:-10}
size_mb=${SIZE_MB:-200}
need "hyperfine bubblewrap util-linux uidmap busybox-static" \
    hyperfine bwrap unshare script newuidmap /bin/busybox
CONTAIN=${CONTAIN:-$(release_dir -p contain)/contain}
unprivileged_user
# The container: busybox, and the file the relay copies (SETUP is expanded by contain_bench).
# shellcheck disable=SC2016
contain_bench contain 'head -c "$((size_mb * 1000 * 1000))" /dev/urandom >"$dir/big"'

reference='unshare -Urmpfiun --mount-proc true'
hyperfine_export "$work/startup" 3 "$runs" "${run_as[@]}" :: \
    "$reference" "$reference" \
    'contain -c DIR /bin/true' "$contain -c $dir /bin/true" \
    'contain -c -u 0:UID:1 -g 0:GID:1 DIR /bin/true' "$contain -c -u 0:$uid:1 -g 0:$gid:1 $dir /bin/true" \
    'bwrap --unshare-all --bind DIR / ... /bin/true' "bwrap --unshare-all --bind $dir / --dev /dev --proc /proc /bin/true" \
    'unshare --map-auto -rmpfiun --mount-proc true' 'unshare --map-auto -rmpfiun --mount-proc true'
echo
echo "start-up (mean, ratio to '$reference'; target: contain <= 1.1x, faster than bwrap):"
print_means "$work/startup.csv" "$reference"

reference="script -qc 'cat big' /dev/null"
load=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine_export "$work/relay" 3 "$relay_runs" "${run_as[@]}" :: \
    "$reference" "script -qc '$dir/bin/cat $dir/big' /dev/null" \
    'contain DIR cat /big' "$contain $dir cat /big" \
    'contain -c DIR cat /big (no console)' "$contain -c $dir cat /big"
echo
echo "console relay of $size_mb MB into /dev/null, load $load before (throughput, ratio to"
echo "'$reference'; target: contain >= 2x):"
print_rates "$work/relay.csv" "$reference" "$((size_mb * 1000 * 1000))"

echo
echo "exports: $work/{startup,relay}.{json,csv}"
