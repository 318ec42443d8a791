#!/usr/bin/env bash
# What a layered root costs at start-up, timed by hyperfine.
#
# `contain -c --tmp-overlay DIR /bin/true` (a tmpfs and an overlay mounted before proc, sys
# and dev) and `contain -c --overlay STATE DIR /bin/true` (the state directory checked and
# locked, its overlay mounted) beside `contain -c DIR /bin/true` (the reference: DIR bound onto
# itself). Target: within 1.1x of the reference; an overlay mount costs about a tenth of a
# millisecond. Two groups: with only the user's own IDs mapped (the least noise around the
# mounts), then with the default maps (newuidmap and newgidmap).
#
# Runs as BENCH_USER (default contain-test, which the tests create when run as root) when
# started as root, else as the caller. DIR is a busybox root file system made here.
#
# Usage: bench/overlay.sh
# Environment: CONTAIN (default: the static release build of bench/build.sh, built here), RUNS
# (default 300), BENCH_USER. Needs the Debian packages hyperfine, busybox-static and uidmap,
# and Linux 5.11 or later.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-300}
need "hyperfine uidmap busybox-static" hyperfine newuidmap /bin/busybox
CONTAIN=${CONTAIN:-$(release_dir -p contain)/contain}
unprivileged_user
# shellcheck disable=SC2016 # expanded by contain_bench
contain_bench overlay 'mkdir "$work/state"'
# STATE's work/ holds a directory of mode 000: root removes it, the user needs pseudo.
# shellcheck disable=SC2064 # $work is fixed now
trap "rm -rf '$work/rootfs' '$work/contain' '$work/state'" EXIT
state=$work/state

for maps in "-u 0:$uid:1 -g 0:$gid:1" ""; do
    name=${maps:+own-ids}
    name=${name:-default-maps}
    shown=${maps:+ -u 0:UID:1 -g 0:GID:1}
    reference="contain -c$shown DIR /bin/true"
    # shellcheck disable=SC2086 # $maps is a list of options
    hyperfine_export "$work/$name" 10 "$runs" "${run_as[@]}" :: \
        "$reference" "$contain -c $maps $dir /bin/true" \
        "contain -c$shown --tmp-overlay DIR /bin/true" "$contain -c $maps --tmp-overlay $dir /bin/true" \
        "contain -c$shown --overlay STATE DIR /bin/true" "$contain -c $maps --overlay $state $dir /bin/true"
    echo
    echo "start-up, $name, $(machine) (mean, ratio to '$reference'; target: <= 1.1x):"
    print_means "$work/$name.csv" "$reference"
done
echo
echo "exports: $work/{own-ids,default-maps}.{json,csv}"
