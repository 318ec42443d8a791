#!/usr/bin/env bash
# How long `inject PID true` takes beside util-linux's nsenter entering the same container,
# timed by hyperfine in one run per group, each reported as its mean and its ratio to nsenter.
#
#   1. As root, into a container root booted: reference `nsenter -t INIT -a true` (all
#      namespaces, root and working directory of INIT, uid and gid 0).
#   2. Unprivileged, as BENCH_USER (default contain-test, which the tests create when run as
#      root) or, when not run as root, as the caller, into a container that user booted:
#      reference `nsenter -t INIT -U --preserve-credentials -a true` (an unprivileged nsenter
#      cannot set its credentials; the user is container root already).
#
# Both give inject the supervisor's PID, as `inject $(pgrep contain)` does: finding the init
# through /proc is part of what is timed. The container is a static busybox (Debian package
# busybox-static) running `sleep`, booted with `contain -c` for the run and ended after it.
#
# Usage: bench/inject.sh
# Environment: BIN (a directory holding contain and inject; default: a release build of this
# checkout, built here), RUNS (default 500), BENCH_USER.
# The JSON (and CSV) exports stay in the printed directory.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-500}
bench_user=${BENCH_USER:-contain-test}

for tool in hyperfine nsenter /bin/busybox; do
    command -v "$tool" >/dev/null || {
        echo "bench: $tool is missing (Debian packages: hyperfine util-linux busybox-static)" >&2
        exit 1
    }
done

if [ -z "${BIN:-}" ]; then
    cargo build --release --locked -p contain -p inject >&2
    BIN=target/release
fi

# The checkout may sit in a home the benchmark user cannot enter.
work=$(mktemp -d /tmp/inject-bench.XXXXXX)
chmod 755 "$work"
for tool in contain inject; do
    cp "$BIN/$tool" "$work/$tool"
    chmod 755 "$work/$tool"
done

# A root file system holding a static busybox and its applets.
rootfs() {
    local dir=$1
    mkdir -p "$dir"/{bin,proc,sys,dev,tmp}
    chmod 1777 "$dir/tmp"
    cp /bin/busybox "$dir/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
    done
}

# Prints each command's mean and its ratio to the command named $2, from hyperfine's CSV.
summarize() {
    awk -F, -v ref="$2" '
        NR > 1 { name[NR] = $1; mean[NR] = $2; if ($1 == ref) base = $2 }
        END {
            for (i = 2; i <= NR; i++)
                printf "  %-52s %7.3f ms  %5.2fx\n", name[i], mean[i] * 1000, mean[i] / base
        }' "$1"
}

containers=()
cleanup() {
    # Only the supervisors this script started: SIGKILL takes init and everything inside.
    for pid in "${containers[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# boot NAME [RUN-AS-PREFIX...]: boots a container in $work/NAME, sets $supervisor and $init.
boot() {
    local name=$1
    shift
    rootfs "$work/$name"
    [ $# -eq 0 ] || chown -R "$bench_user:" "$work/$name"
    "$@" "$work/contain" -c "$work/$name" /bin/sh -c 'touch /tmp/ready; exec sleep 100000' \
        </dev/null >/dev/null 2>&1 &
    supervisor=$!
    containers+=("$supervisor")
    for _ in $(seq 500); do
        [ -e "$work/$name/tmp/ready" ] && break
        sleep 0.01
    done
    [ -e "$work/$name/tmp/ready" ] || { echo "bench: the container did not start" >&2; exit 1; }
    init=$(cat "/proc/$supervisor/task/$supervisor/children")
}

# bench NAME REFERENCE [RUN-AS-PREFIX...] :: NAME1 CMD1 NAME2 CMD2 ...
bench() {
    local name=$1 reference=$2
    shift 2
    local prefix=()
    while [ "$1" != "::" ]; do
        prefix+=("$1")
        shift
    done
    shift
    local args=()
    while [ $# -gt 0 ]; do
        args+=(-n "$1" "$2")
        shift 2
    done
    "${prefix[@]}" hyperfine -N --warmup 30 --runs "$runs" \
        --export-json "$work/$name.json" --export-csv "$work/$name.csv" "${args[@]}" >&2
    echo
    echo "$name (mean, ratio to '$reference'):"
    summarize "$work/$name.csv" "$reference"
}

if [ "$(id -u)" = 0 ]; then
    boot root
    echo "== as root, inject $("$work/inject" --version | cut -d' ' -f2), $(uname -r)"
    bench root 'nsenter -t INIT -a true' :: \
        'nsenter -t INIT -a true' "nsenter -t $init -a true" \
        'inject SUPERVISOR true' "$work/inject $supervisor true"

    if ! id "$bench_user" >/dev/null 2>&1; then
        echo "bench: no user $bench_user: run the tests as root once, or set BENCH_USER" >&2
        exit 1
    fi
    run_as=(runuser -u "$bench_user" --)
    # setpriv execs the command itself, so that $! is contain's PID (runuser stays its parent).
    boot_as=(setpriv --reuid="$bench_user" --regid="$(id -g "$bench_user")" --init-groups)
    chown "$bench_user" "$work"
else
    bench_user=$(id -un)
    run_as=()
    boot_as=()
fi

boot user "${boot_as[@]}"
echo
echo "== as $bench_user ($(id -u "$bench_user"))"
bench user 'nsenter -t INIT -U --preserve-credentials -a true' "${run_as[@]}" :: \
    'nsenter -t INIT -U --preserve-credentials -a true' \
    "nsenter -t $init -U --preserve-credentials -a true" \
    'inject SUPERVISOR true' "$work/inject $supervisor true"

echo
echo "exports: $work/{root,user}.{json,csv}"
