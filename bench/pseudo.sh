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
# Environment: PSEUDO (default: the static release build of bench/build.sh, built here), RUNS
# (default 500), BENCH_USER.
# Needs the Debian packages hyperfine, fakeroot, proot and uidmap, and util-linux 2.38 or later
# for --map-auto. The JSON and CSV exports stay in the printed directory.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-500}
need "hyperfine fakeroot proot util-linux uidmap" hyperfine fakeroot proot unshare newuidmap
PSEUDO=${PSEUDO:-$(release_dir -p pseudo)/pseudo}
make_work pseudo
pseudo=$(install_tool "$PSEUDO")

# group NAME REFERENCE NOTE [PREFIX...] :: NAME1 CMD1 NAME2 CMD2 ...: times a group and prints
# its means under a heading that ends with NOTE.
group() {
    local name=$1 reference=$2 note=$3
    shift 3
    hyperfine_export "$work/$name" 30 "$runs" "$@"
    echo
    echo "$name (mean, ratio to '$reference'$note):"
    print_means "$work/$name.csv" "$reference"
}

echo "== as $(id -un), pseudo $("$pseudo" --version | cut -d' ' -f2), $(machine)"
group caller 'unshare -Ur true' '; target: pseudo true <= 1.1x' :: \
    'unshare -Ur true' 'unshare -Ur true' \
    'pseudo true' "$pseudo true" \
    'unshare -Ur --fork true' 'unshare -Ur --fork true' \
    'fakeroot true' 'fakeroot true' \
    'proot -0 true' 'proot -0 true'

unprivileged_user
[ ${#run_as[@]} -eq 0 ] || chown "$bench_user" "$work"
if ! grep -qE "^($bench_user|$uid):" /etc/subuid; then
    echo "bench: $bench_user has no range in /etc/subuid: skipping the unprivileged group" >&2
    exit 0
fi
echo
echo "== as $bench_user ($uid), with subordinate ranges; load $(cut -d' ' -f1-3 /proc/loadavg)"
group unprivileged 'unshare --map-auto --map-root-user true' '' "${run_as[@]}" :: \
    'unshare --map-auto --map-root-user true' 'unshare --map-auto --map-root-user true' \
    'pseudo true' "$pseudo true" \
    'unshare -Ur true' 'unshare -Ur true' \
    'pseudo -u 0:UID:1 -g 0:GID:1 true' "$pseudo -u 0:$uid:1 -g 0:$gid:1 true"

echo
echo "exports: $work/{caller,unprivileged}.{json,csv}"
