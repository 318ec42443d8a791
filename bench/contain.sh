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
# Environment: CONTAIN (default: a release build of this checkout, built here), RUNS (default
# 300), RELAY_RUNS (default 10), SIZE_MB (default 200), BENCH_USER.
# Needs the Debian packages hyperfine, bubblewrap, busybox-static and uidmap. The JSON and CSV
# exports stay in the printed directory.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-300}
relay_runs=${RELAY_RUNS:-10}
size_mb=${SIZE_MB:-200}
bench_user=${BENCH_USER:-contain-test}

for tool in hyperfine bwrap unshare script newuidmap; do
    command -v "$tool" >/dev/null || {
        echo "bench: $tool is missing (Debian packages: hyperfine bubblewrap util-linux uidmap)" >&2
        exit 1
    }
done
[ -x /bin/busybox ] || {
    echo "bench: /bin/busybox is missing (Debian package busybox-static)" >&2
    exit 1
}

if [ -z "${CONTAIN:-}" ]; then
    cargo build --release --locked -p contain >&2
    CONTAIN=target/release/contain
fi

run_as=()
if [ "$(id -u)" = 0 ]; then
    if ! id "$bench_user" >/dev/null 2>&1; then
        echo "bench: no user $bench_user: run the tests as root once, or set BENCH_USER" >&2
        exit 1
    fi
    run_as=(runuser -u "$bench_user" --)
else
    bench_user=$(id -un)
fi
uid=$(id -u "$bench_user")
gid=$(id -g "$bench_user")

# The checkout may sit in a home the benchmark user cannot enter.
work=$(mktemp -d /tmp/contain-bench.XXXXXX)
chmod 755 "$work"
cp "$CONTAIN" "$work/contain"
chmod 755 "$work/contain"
contain=$work/contain

# The container: busybox with a link per applet, and the file the relay copies.
dir=$work/rootfs
mkdir -p "$dir"/{bin,sbin,etc,proc,sys,dev,root,tmp}
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
printf 'root:x:0:\n' >"$dir/etc/group"
head -c "$((size_mb * 1000 * 1000))" /dev/urandom >"$dir/big"
if [ ${#run_as[@]} -gt 0 ]; then
    chown -R "$bench_user:" "$work"
fi
# The exports stay; the root file system with its big file goes on every way out.
trap 'rm -rf "$work/rootfs" "$work/contain"' EXIT

# Prints each command's mean and its ratio to the command named $2, from hyperfine's CSV.
summarize_times() {
    awk -F, -v ref="$2" '
        NR > 1 { name[NR] = $1; mean[NR] = $2; if ($1 == ref) base = $2 }
        END {
            for (i = 2; i <= NR; i++)
                printf "  %-52s %8.3f ms  %5.2fx\n", name[i], mean[i] * 1000, mean[i] / base
        }' "$1"
}

# Prints each command's throughput for $3 bytes and its ratio to the command named $2.
summarize_rates() {
    awk -F, -v ref="$2" -v bytes="$3" '
        NR > 1 { name[NR] = $1; mean[NR] = $2; if ($1 == ref) base = $2 }
        END {
            for (i = 2; i <= NR; i++)
                printf "  %-52s %8.1f MB/s  %5.2fx\n", name[i], bytes / mean[i] / 1e6,
                    base / mean[i]
        }' "$1"
}

# bench NAME RUNS :: NAME1 CMD1 NAME2 CMD2 ...
bench() {
    local name=$1 count=$2
    shift 3
    local args=()
    while [ $# -gt 0 ]; do
        args+=(-n "$1" "$2")
        shift 2
    done
    "${run_as[@]}" hyperfine -N --warmup 3 --runs "$count" \
        --export-json "$work/$name.json" --export-csv "$work/$name.csv" "${args[@]}" >&2
}

echo "== as $bench_user ($uid), contain $("$contain" --version | cut -d' ' -f2), $(uname -r)," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

reference='unshare -Urmpfiun --mount-proc true'
bench startup "$runs" :: \
    "$reference" "$reference" \
    'contain -c DIR /bin/true' "$contain -c $dir /bin/true" \
    'contain -c -u 0:UID:1 -g 0:GID:1 DIR /bin/true' "$contain -c -u 0:$uid:1 -g 0:$gid:1 $dir /bin/true" \
    'bwrap --unshare-all --bind DIR / ... /bin/true' "bwrap --unshare-all --bind $dir / --dev /dev --proc /proc /bin/true" \
    'unshare --map-auto -rmpfiun --mount-proc true' 'unshare --map-auto -rmpfiun --mount-proc true'
echo
echo "start-up (mean, ratio to '$reference'; target: contain <= 1.1x, faster than bwrap):"
summarize_times "$work/startup.csv" "$reference"

reference="script -qc 'cat big' /dev/null"
bench relay "$relay_runs" :: \
    "$reference" "script -qc '$dir/bin/cat $dir/big' /dev/null" \
    'contain DIR cat /big' "$contain $dir cat /big" \
    'contain -c DIR cat /big (no console)' "$contain -c $dir cat /big"
echo
echo "console relay of $size_mb MB into /dev/null (throughput, ratio to '$reference'; target: contain >= 2x):"
summarize_rates "$work/relay.csv" "$reference" "$((size_mb * 1000 * 1000))"

echo
echo "exports: $work/{startup,relay}.{json,csv}"
