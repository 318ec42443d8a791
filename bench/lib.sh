# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): checks for the tools they compare, the
# static release build, the work directory and busybox root file system, the unprivileged
# user, hyperfine with its exports, and the summaries printed from those exports.
# Sourcing it moves to the top of the checkout and sets -euo pipefail.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# need PACKAGES COMMAND...: fails naming the Debian PACKAGES when a COMMAND is missing.
need() {
    local packages=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "bench: $tool is missing (Debian packages: $packages)" >&2
            exit 1
        }
    done
}

# release_dir CARGO-ARGS...: builds with bench/build.sh (static, see there) and prints the
# directory holding the binaries.
release_dir() {
    bench/build.sh "$@"
}

# make_work NAME: a new directory /tmp/NAME-bench.XXXXXX (mode 0755, as the checkout may sit
# where the benchmark user cannot enter) in $work.
make_work() {
    work=$(mktemp -d "/tmp/$1-bench.XXXXXX")
    chmod 755 "$work"
}

# install_tool FILE: copies the binary FILE into $work (mode 0755) and prints its new path.
install_tool() {
    local copy
    copy=$work/$(basename "$1")
    cp "$1" "$copy"
    chmod 755 "$copy"
    echo "$copy"
}

# busybox_rootfs DIR: a root file system of the static /bin/busybox (Debian package
# busybox-static; check with need) with a link per applet, the mount points contain fills, and a root-only passwd and group.
busybox_rootfs() {
    local dir=$1 applet
    mkdir -p "$dir"/{bin,sbin,etc,proc,sys,dev,root,tmp}
    chmod 1777 "$dir/tmp"
    cp /bin/busybox "$dir/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
    printf 'root:x:0:\n' >"$dir/etc/group"
}

# unprivileged_user: who the unprivileged runs are for. Started as root: BENCH_USER (default
# contain-test, which the tests create when run as root), reached through $run_as (runuser,
# which stays the parent) or $boot_as (setpriv, which execs the command itself, so $! is its
# PID). Otherwise the caller, with both prefixes empty. Sets bench_user, uid, gid, run_as and
# boot_as; fails when BENCH_USER does not exist.
# shellcheck disable=SC2034 # the variables are for the scripts that source this
unprivileged_user() {
    run_as=()
    boot_as=()
    if [ "$(id -u)" = 0 ]; then
        bench_user=${BENCH_USER:-contain-test}
        if ! id "$bench_user" >/dev/null 2>&1; then
            echo "bench: no user $bench_user: run the tests as root once, or set BENCH_USER" >&2
            exit 1
        fi
        run_as=(runuser -u "$bench_user" --)
        boot_as=(setpriv --reuid="$bench_user" --regid="$(id -g "$bench_user")" --init-groups)
    else
        bench_user=$(id -un)
    fi
    uid=$(id -u "$bench_user")
    gid=$(id -g "$bench_user")
}

# contain_bench NAME [SETUP]: the common start of a contain benchmark, after
# unprivileged_user: a work dir (see make_work), $contain (a copy of $CONTAIN there), $dir (a
# busybox root file system there), SETUP run (e.g. adding a file to $dir), everything handed
# to the benchmark user, the copy and the root file system removed on every way out (the
# exports stay), and a heading naming user, contain and machine.
contain_bench() {
    make_work "$1"
    # shellcheck disable=SC2153 # CONTAIN is the script's setting
    contain=$(install_tool "$CONTAIN")
    dir=$work/rootfs
    busybox_rootfs "$dir"
    [ $# -lt 2 ] || eval "$2"
    [ ${#run_as[@]} -eq 0 ] || chown -R "$bench_user:" "$work"
    # shellcheck disable=SC2064 # $work is fixed now
    trap "rm -rf '$work/rootfs' '$work/contain'" EXIT
    echo "== as $bench_user ($uid), contain $("$contain" --version | cut -d' ' -f2), $(machine)"
}

# machine: kernel, cores and load averages, for the heading of a group (means depend on them).
machine() {
    echo "$(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# take_prefix WORD... :: REST...: sets prefix (declare it local first) to the WORDs before the
# "::"; the caller then drops them and the "::" with `shift $((${#prefix[@]} + 1))`.
take_prefix() {
    prefix=()
    while [ $# -gt 0 ] && [ "$1" != "::" ]; do
        prefix+=("$1")
        shift
    done
    [ $# -gt 0 ] || { echo "bench: no :: after the prefix" >&2; exit 1; }
}

# hyperfine_export BASE WARMUP RUNS [PREFIX...] :: NAME CMD [NAME CMD...]
# Times each CMD (run without a shell, output to /dev/null) under its NAME: WARMUP unmeasured
# runs, then RUNS. PREFIX (e.g. $run_as) runs hyperfine itself as another user. Exports
# BASE.json and BASE.csv; hyperfine's own report goes to stderr.
hyperfine_export() {
    local base=$1 warmup=$2 runs=$3
    shift 3
    local prefix
    take_prefix "$@"
    shift $((${#prefix[@]} + 1))
    local commands=()
    while [ $# -gt 0 ]; do
        commands+=(-n "$1" "$2")
        shift 2
    done
    "${prefix[@]}" hyperfine -N --warmup "$warmup" --runs "$runs" \
        --export-json "$base.json" --export-csv "$base.csv" "${commands[@]}" >&2
}

# print_means CSV REFERENCE: each command's mean and its ratio to the command named REFERENCE.
print_means() {
    awk -F, -v ref="$2" '
        NR > 1 { name[NR] = $1; mean[NR] = $2; if ($1 == ref) base = $2 }
        END {
            for (i = 2; i <= NR; i++)
                printf "  %-52s %8.3f ms  %5.2fx\n", name[i], mean[i] * 1000, mean[i] / base
        }' "$1"
}

# print_rates CSV REFERENCE BYTES: each command's throughput for BYTES copied and its speed
# relative to the command named REFERENCE (2.00x: twice as fast).
print_rates() {
    awk -F, -v ref="$2" -v bytes="$3" '
        NR > 1 { name[NR] = $1; mean[NR] = $2; if ($1 == ref) base = $2 }
        END {
            for (i = 2; i <= NR; i++)
                printf "  %-52s %8.1f MB/s  %5.2fx\n", name[i], bytes / mean[i] / 1e6,
                    base / mean[i]
        }' "$1"
}

# median: the median of the numbers on stdin, one a line.
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# boot_container DIR [BOOT-AS-PREFIX...]: makes a busybox root file system in DIR (handed to
# $bench_user when a prefix is given) and boots `contain -c` ($contain) on it in the
# background, running `sleep` until end_containers; waits until its shell ran, then sets
# $supervisor (the PID of contain, as the prefix execs it) and $init, and adds the supervisor to
# $containers.
containers=()
boot_container() {
    local root=$1
    shift
    busybox_rootfs "$root"
    [ $# -eq 0 ] || chown -R "$bench_user:" "$root"
    "$@" "$contain" -c "$root" /bin/sh -c 'touch /tmp/ready; exec sleep 100000' \
        </dev/null >/dev/null 2>&1 &
    supervisor=$!
    containers+=("$supervisor")
    for _ in $(seq 500); do
        [ -e "$root/tmp/ready" ] && break
        sleep 0.01
    done
    [ -e "$root/tmp/ready" ] || { echo "bench: the container did not start" >&2; exit 1; }
    # contain's other child is its watchdog, which stays in contain's namespaces: init is the
    # child in a PID namespace of its own.
    local child own
    own=$(readlink "/proc/$supervisor/ns/pid")
    init=
    for child in $(cat "/proc/$supervisor/task/$supervisor/children"); do
        [ "$(readlink "/proc/$child/ns/pid")" = "$own" ] || init=$child
    done
    [ -n "$init" ] || { echo "bench: no init among contain's children" >&2; exit 1; }
}

# end_containers: ends the containers boot_container started (for the EXIT trap).
end_containers() {
    # Only the supervisors this script started: SIGKILL takes init and everything inside.
    for pid in "${containers[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}

# pair_rounds REPORT BASE WARMUP COLUMN [PREFIX...] :: REF-NAME REF-CMD NAME CMD
# Times two commands in $rounds hyperfine runs of $runs runs each (see hyperfine_export for
# WARMUP and PREFIX), exported to BASE.ROUND.{json,csv}. Background load on a small machine moves
# times by 10% and more between hyperfine runs, and hyperfine runs the commands one after the
# other, so odd rounds run REF-NAME first and even rounds NAME. After each round, appends each
# command's time in ms (CSV COLUMN: 2 the mean, 4 the median) to $ref_ms and $other_ms, NAME's
# over REF-NAME's to $ratios (3 decimals), then runs `REPORT ROUND CSV REF-NAME`.
pair_rounds() {
    local report=$1 base=$2 warmup=$3 column=$4
    shift 4
    local prefix
    take_prefix "$@"
    shift $((${#prefix[@]} + 1))
    local reference=$1 forward=("$1" "$2" "$3" "$4") backward=("$3" "$4" "$1" "$2")
    local round order ref other
    ref_ms=() other_ms=() ratios=()
    for round in $(seq "$rounds"); do
        order=("${forward[@]}")
        [ $((round % 2)) = 1 ] || order=("${backward[@]}")
        hyperfine_export "$base.$round" "$warmup" "$runs" "${prefix[@]}" :: "${order[@]}"
        read -r ref other < <(awk -F, -v ref="$reference" -v column="$column" '
            NR > 1 { if ($1 == ref) r = $column; else o = $column }
            END { print r * 1000, o * 1000 }' "$base.$round.csv")
        ref_ms+=("$ref")
        other_ms+=("$other")
        ratios+=("$(awk -v r="$ref" -v o="$other" 'BEGIN { printf "%.3f", o / r }')")
        "$report" "$round" "$base.$round.csv" "$reference"
    done
}

# report_rounds NAME WARMUP COLUMN TARGET [PREFIX...] :: REF-NAME REF-CMD NAME CMD
# The rounds of pair_rounds (WARMUP, COLUMN and PREFIX as there), exported to
# $work/NAME.ROUND.{json,csv}: a heading (TARGET, e.g. "<= 1.1x", is said in it when not
# empty), each round's two times and ratio, then the median ratio.
report_rounds() {
    local name=$1 warmup=$2 column=$3 target=$4 what=median prefix
    shift 4
    take_prefix "$@"
    shift $((${#prefix[@]} + 1))
    [ "$column" != 2 ] || what=mean
    echo
    echo "$name, $rounds rounds of $runs runs: $what of '$1', of '$3', ratio${target:+ (target: $target)}"
    pair_rounds print_round_times "$work/$name" "$warmup" "$column" "${prefix[@]}" :: "$@"
    echo "  median ratio: $(printf '%s\n' "${ratios[@]}" | median)x"
}

# print_round_times: pair_rounds' REPORT for report_rounds: the round's two times and ratio.
print_round_times() {
    printf '  %8.3f ms  %8.3f ms  %5.3fx\n' "${ref_ms[-1]}" "${other_ms[-1]}" "${ratios[-1]}"
}
