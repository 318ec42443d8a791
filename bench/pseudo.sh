#!/usr/bin/env bash
# How long `pseudo true` takes beside other ways of running a command as (fake) root, timed by
# hyperfine in one run per group, each reported as its mean and its ratio to the reference.
#
#   1. As the caller, reference `unshare -Ur true`: pseudo with its default maps, unshare -Ur
#      with and without --fork (pseudo stays as the parent of the command, like --fork),
#      fakeroot and proot -0.
#   2. Unprivileged, as BENCH_USER (default contain-test, which the tests create when run as
#      root) or, when not run as root, as the caller: reference `unshare --map-auto
#      --map-root-user true`, which also maps subordinate ranges through newuidmap/newgidmap,
#      beside `pseudo true` with those ranges, and both with only the user's own ID.
#
# Usage: bench/pseudo.sh
# Environment: PSEUDO (default: a release build of this checkout, built here), RUNS (default
# 500), BENCH_USER.
# Needs the Debian packages hyperfine, fakeroot, proot and uidmap, and util-linux 2.38 or later
# for --map-auto. The JSON (and CSV) exports stay in the printed directory.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-500}
bench_user=${BENCH_USER:-contain-test}

for tool in hyperfine fakeroot proot unshare newuidmap; do
    command -v "$tool" >/dev/null || {
        echo "bench: $tool is missing (Debian packages: hyperfine fakeroot proot util-linux uidmap)" >&2
        exit 1
    }
done

if [ -z "${PSEUDO:-}" ]; then
    cargo build --release --locked -p pseudo >&2
    PSEUDO=target/release/pseudo
fi

# The checkout may sit in a home the benchmark user cannot enter.
work=$(mktemp -d /tmp/pseudo-bench.XXXXXX)
chmod 755 "$work"
cp "$PSEUDO" "$work/pseudo"
chmod 755 "$work/pseudo"
pseudo=$work/pseudo

# Prints each command's mean and its ratio to the command named $2, from hyperfine's CSV.
summarize() {
    awk -F, -v ref="$2" '
        NR > 1 { name[NR] = $1; mean[NR] = $2; if ($1 == ref) base = $2 }
        END {
            for (i = 2; i <= NR; i++)
                printf "  %-48s %7.3f ms  %5.2fx\n", name[i], mean[i] * 1000, mean[i] / base
        }' "$1"
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

echo "== as $(id -un), pseudo $("$pseudo" --version | cut -d' ' -f2), $(uname -r)"
bench caller 'unshare -Ur true' :: \
    'unshare -Ur true' 'unshare -Ur true' \
    'pseudo true' "$pseudo true" \
    'unshare -Ur --fork true' 'unshare -Ur --fork true' \
    'fakeroot true' 'fakeroot true' \
    'proot -0 true' 'proot -0 true'

# The unprivileged group.
run_as=()
if [ "$(id -u)" = 0 ]; then
    if ! id "$bench_user" >/dev/null 2>&1; then
        echo "bench: no user $bench_user: run the tests as root once, or set BENCH_USER" >&2
        exit 1
    fi
    run_as=(runuser -u "$bench_user" --)
    chown "$bench_user" "$work"
else
    bench_user=$(id -un)
fi
uid=$(id -u "$bench_user")
gid=$(id -g "$bench_user")
if ! grep -qE "^($bench_user|$uid):" /etc/subuid; then
    echo "bench: $bench_user has no range in /etc/subuid: skipping the unprivileged group" >&2
    exit 0
fi
echo
echo "== as $bench_user ($uid), with subordinate ranges"
bench unprivileged 'unshare --map-auto --map-root-user true' "${run_as[@]}" :: \
    'unshare --map-auto --map-root-user true' 'unshare --map-auto --map-root-user true' \
    'pseudo true' "$pseudo true" \
    'unshare -Ur true' 'unshare -Ur true' \
    'pseudo -u 0:UID:1 -g 0:GID:1 true' "$pseudo -u 0:$uid:1 -g 0:$gid:1 true"

echo
echo "exports: $work/{caller,unprivileged}.{json,csv}"
