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
# Both give inject the supervisor's PID, as `inject $(pgrep -n contain)` does: finding the init
# through /proc is part of what is timed. The container is a static busybox (Debian package
# busybox-static) running `sleep`, booted with `contain -c` for the run and ended after it.
#
# Usage: bench/inject.sh
# Environment: BIN (a directory holding contain and inject; default: the static release build
# of bench/build.sh, built here), RUNS per round (default 300), ROUNDS (default 6; rounds
# alternate which command runs first), BENCH_USER.
# The JSON and CSV exports stay in the printed directory.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-300}
rounds=${ROUNDS:-6}
need "hyperfine util-linux busybox-static" hyperfine nsenter /bin/busybox
BIN=${BIN:-$(release_dir -p contain -p inject)}
make_work inject
contain=$(install_tool "$BIN/contain")
inject=$(install_tool "$BIN/inject")

trap end_containers EXIT

if [ "$(id -u)" = 0 ]; then
    boot_container "$work/root"
    echo "== as root, inject $("$inject" --version | cut -d' ' -f2), $(machine)"
    report_rounds root 30 2 "<= 1.1x" :: \
        'nsenter -t INIT -a true' "nsenter -t $init -a true" \
        'inject SUPERVISOR true' "$inject $supervisor true"
fi

unprivileged_user
[ ${#run_as[@]} -eq 0 ] || chown "$bench_user" "$work"
boot_container "$work/user" "${boot_as[@]}"
echo
echo "== as $bench_user ($uid), load $(cut -d' ' -f1-3 /proc/loadavg)"
report_rounds user 30 2 "<= 1.1x" "${run_as[@]}" :: \
    'nsenter -t INIT -U --preserve-credentials -a true' \
    "nsenter -t $init -U --preserve-credentials -a true" \
    'inject SUPERVISOR true' "$inject $supervisor true"

echo
echo "exports: $work/{root,user}.ROUND.{json,csv}"
