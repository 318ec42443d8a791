#!/usr/bin/env bash
# The installed tools (what `make install` put in PATH) against their util-linux peers, one
# pair per hyperfine run, ROUNDS rounds per pair alternating which command runs first; each
# round's ratio is the tool's median time over the peer's, and the median of those ratios is
# the result (target <= 1.1x on every row; 1.0x for pseudo). Rows, as BENCH_USER (as root;
# else the caller):
#
#   pseudo -u 0:UID:1 -g 0:GID:1 true         vs unshare -Ur true
#   contain -c -u 0:UID:1 -g 0:GID:1 DIR true vs unshare -Urmpfiun --mount-proc true
#   inject SUPERVISOR true                    vs nsenter -t INIT -U --preserve-credentials -a true
#   pseudo true (subordinate ranges)          vs unshare --map-auto --map-root-user true
#   contain -c DIR true (subordinate ranges)  vs unshare --map-auto -rmpfiun --mount-proc true
#
# and, as root, `inject SUPERVISOR true` vs `nsenter -t INIT -a true` into a container of
# root's. DIR is a busybox root file system; the container inject enters runs `sleep`.
#
# Usage: bench/installed.sh [BINDIR]   (default: where `contain` is found in PATH)
#        ROUNDS (default 6), RUNS per command and round (default 200), BENCH_USER
source "$(dirname "$0")/lib.sh"

need "hyperfine util-linux busybox-static uidmap" hyperfine unshare nsenter /bin/busybox newuidmap
rounds=${ROUNDS:-6}
runs=${RUNS:-200}
bindir=${1:-$(dirname "$(command -v contain || echo /nonexistent/contain)")}
for tool in pseudo contain inject; do
    [ -x "$bindir/$tool" ] || {
        echo "bench: no $bindir/$tool: make install first, or name the directory" >&2
        exit 1
    }
done
pseudo=$bindir/pseudo contain=$bindir/contain inject=$bindir/inject

make_work installed
unprivileged_user
cleanup() {
    end_containers
    rm -rf "$work"/root-*
}
trap cleanup EXIT

# pair ROW [RUN-AS-PREFIX...] :: PEER-NAME PEER-CMD TOOL-NAME TOOL-CMD: the rounds of one row
# (see pair_rounds; hyperfine's own report is dropped); appends "ROW|peer median ms|tool median
# ms|median ratio" to $work/summary.
pair() {
    local row=$1
    shift
    echo "$row: $rounds rounds of $runs runs, $(machine)" >&2
    pair_rounds print_medians "$work/$(echo "$row" | tr -c 'a-zA-Z0-9\n' '_')" 20 4 "$@" \
        3>&2 2>/dev/null
    printf '%s|%.3f|%.3f|%.3f\n' "$row" "$(printf '%s\n' "${ref_ms[@]}" | median)" \
        "$(printf '%s\n' "${other_ms[@]}" | median)" "$(printf '%s\n' "${ratios[@]}" | median)" \
        >>"$work/summary"
}

# print_medians ROUND: to the stderr pair saved as 3, the round's medians and ratio.
print_medians() {
    echo "  round $1: peer ${ref_ms[-1]} ms, tool ${other_ms[-1]} ms, ratio ${ratios[-1]}" >&3
}

dir=$work/root-start
busybox_rootfs "$dir"
[ ${#run_as[@]} -eq 0 ] || chown -R "$bench_user:" "$work"

pair "pseudo -u 0:UID:1 -g 0:GID:1 true | unshare -Ur true" "${run_as[@]}" :: \
    'unshare -Ur true' 'unshare -Ur true' \
    'pseudo' "$pseudo -u 0:$uid:1 -g 0:$gid:1 true"
pair "contain -c -u 0:UID:1 -g 0:GID:1 DIR true | unshare -Urmpfiun --mount-proc true" \
    "${run_as[@]}" :: \
    'unshare' 'unshare -Urmpfiun --mount-proc true' \
    'contain' "$contain -c -u 0:$uid:1 -g 0:$gid:1 $dir /bin/true"
boot_container "$work/root-user" "${boot_as[@]}"
pair "inject SUPERVISOR true | nsenter -t INIT -U --preserve-credentials -a true" \
    "${run_as[@]}" :: \
    'nsenter' "nsenter -t $init -U --preserve-credentials -a true" \
    'inject' "$inject $supervisor true"
pair "pseudo true (subordinate ranges) | unshare --map-auto --map-root-user true" \
    "${run_as[@]}" :: \
    'unshare' 'unshare --map-auto --map-root-user true' \
    'pseudo' "$pseudo true"
pair "contain -c DIR true (subordinate ranges) | unshare --map-auto -rmpfiun --mount-proc true" \
    "${run_as[@]}" :: \
    'unshare' 'unshare --map-auto -rmpfiun --mount-proc true' \
    'contain' "$contain -c $dir /bin/true"
if [ "$(id -u)" = 0 ]; then
    boot_container "$work/root-root"
    pair "inject SUPERVISOR true, as root | nsenter -t INIT -a true" :: \
        'nsenter' "nsenter -t $init -a true" \
        'inject' "$inject $supervisor true"
fi

echo "== $bindir as $bench_user ($uid): medians of $rounds rounds of $runs runs each"
printf '%-62s %-58s %8s %8s %6s\n' tool peer 'tool ms' 'peer ms' ratio
while IFS='|' read -r tool peer peer_ms tool_ms ratio; do
    printf '%-62s %-58s %8s %8s %5sx\n' "$tool" "$peer" "$tool_ms" "$peer_ms" "$ratio"
done <"$work/summary"
echo "exports: $work/*.ROUND.{json,csv}"
