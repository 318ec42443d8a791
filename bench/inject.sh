#!/usr/bin/env bash
# How long `inject PID true` takes beside util-linux's nsenter entering the same container,
# timed by hyperfine, reported as both means and inject's ratio to nsenter.
#
#   1. As root, into a container root booted: reference `nsenter -t INIT -a true` (all
#      namespaces, root and working directory of INIT, uid and gid 0).
#   2. Unprivileged, as BENCH_USER (default contain-test, which the tests create when run as
#      root) or, when not run as root, as the caller, into a container that user booted:
#      reference `nsenter -t INIT -U --preserve-credentials -a true` (the user is container
#      root already; nsenter's own switch to uid 0 calls setgroups, which the container's user
#      namespace may deny).
#
# Background load on a small machine moves means by 10% and more between hyperfine runs, so
# each group runs ROUNDS times (hyperfine runs the commands one after the other, not
# interleaved): every round's means and ratio are printed, then the median ratio.
#
# Both give inject the supervisor's PID, as `inject $(pgrep contain)` does: finding the init
# through /proc is part of what is timed. The container is a static busybox (Debian package
# busybox-static) running `sleep`, booted with `contain -c` for the run and ended after it.
#
# Usage: bench/inject.sh
# Environment: BIN (a directory holding contain and inject; default: a release build of this
# checkout, built here), RUNS per round (default 300), ROUNDS (default 6; rounds alternate
# which command runs first), BENCH_USER.
# The JSON (and CSV) exports stay in the printed directory.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-300}
rounds=${ROUNDS:-6}
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

# Prints, from hyperfine's CSV $1, the mean of the reference command $2 and of the other one
# and their ratio, on one line: "  MEAN-REF ms  MEAN-OTHER ms  RATIOx".
summarize() {
    awk -F, -v ref="$2" '
        NR > 1 { if ($1 == ref) base = $2; else other = $2 }
        END { printf "  %7.3f ms  %7.3f ms  %5.3fx\n", base * 1000, other * 1000, other / base }
    ' "$1"
}

# The median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
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

# bench NAME [RUN-AS-PREFIX...] :: REFERENCE-NAME REFERENCE-CMD NAME CMD
# Rounds alternate which command hyperfine runs first.
bench() {
    local name=$1
    shift
    local prefix=()
    while [ "$1" != "::" ]; do
        prefix+=("$1")
        shift
    done
    shift
    local reference=$1 other=$3
    local forward=(-n "$1" "$2" -n "$3" "$4") backward=(-n "$3" "$4" -n "$1" "$2")
    echo
    echo "$name, $rounds rounds of $runs runs: mean of '$reference', of '$other', ratio"
    local ratios=() round
    for round in $(seq "$rounds"); do
        local export=$work/$name.$round order=("${forward[@]}")
        [ $((round % 2)) = 1 ] || order=("${backward[@]}")
        "${prefix[@]}" hyperfine -N --warmup 30 --runs "$runs" \
            --export-json "$export.json" --export-csv "$export.csv" "${order[@]}" >&2
        local line
        line=$(summarize "$export.csv" "$reference")
        echo "$line"
        ratios+=("$(echo "$line" | awk '{ print $NF }' | tr -d x)")
    done
    echo "  median ratio: $(printf '%s\n' "${ratios[@]}" | median)x"
}

if [ "$(id -u)" = 0 ]; then
    boot root
    echo "== as root, inject $("$work/inject" --version | cut -d' ' -f2), $(uname -r)"
    bench root :: \
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
bench user "${run_as[@]}" :: \
    'nsenter -t INIT -U --preserve-credentials -a true' \
    "nsenter -t $init -U --preserve-credentials -a true" \
    'inject SUPERVISOR true' "$work/inject $supervisor true"

echo
echo "exports: $work/{root,user}.ROUND.{json,csv}"
