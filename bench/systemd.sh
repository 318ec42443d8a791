#!/usr/bin/env bash
# How long systemd takes to boot and to shut down under contain, beside systemd-nspawn, on the
# same Debian tree.
#
#   Boot: from starting `contain DIR /sbin/init` (or `systemd-nspawn -D DIR -b`) to
#   `systemctl is-system-running` answering running or degraded (the boot has finished),
#   polled every 20 ms from outside (inject; nsenter for nspawn).
#   Shutdown: from SIGTERM to the tool's end (contain passes it on as SIGRTMIN+3, nspawn sends
#   that itself; systemd halts).
#
# Rounds alternate: odd rounds start with contain, even ones with nspawn. Both run as root,
# and both map container root to the tree's owner (root's default maps for contain,
# --private-users=OWNER for nspawn): nspawn without a user namespace would chown files to host
# root and so change the tree under the next contain. On a host without systemd as PID 1,
# nspawn needs a cgroup of its own (made here, below the cgroup v2 hierarchy, and removed) and
# --register=no --keep-unit; contain makes its own cgroup.
#
# Usage: bench/systemd.sh DIR
#   DIR: a Debian tree with systemd, made as root with
#        INIT=systemd BOOT=no examples/debian.sh DIR
# Environment: CONTAIN, INJECT (default: the static release build of bench/build.sh, built
# here), ROUNDS (default 6).
# Needs the Debian package systemd-container (systemd-nspawn) and util-linux (nsenter).
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(realpath "$1")
[ "$(id -u)" = 0 ] || { echo "bench: run as root (systemd-nspawn needs it)" >&2; exit 1; }
case $(readlink "$dir/sbin/init" || true) in
*systemd*) ;;
*) echo "bench: $dir/sbin/init is not systemd (INIT=systemd examples/debian.sh)" >&2; exit 1 ;;
esac
need "systemd-container util-linux" systemd-nspawn nsenter
owner=$(stat -c %u "$dir")
[ "$owner" != 0 ] || { echo "bench: $dir belongs to root: make it with examples/debian.sh" >&2; exit 1; }
rounds=${ROUNDS:-6}
if [ -z "${CONTAIN:-}" ] || [ -z "${INJECT:-}" ]; then
    release=$(release_dir -p contain -p inject)
    CONTAIN=${CONTAIN:-$release/contain}
    INJECT=${INJECT:-$release/inject}
fi
v2=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
[ -n "$v2" ] || { echo "bench: no cgroup v2 hierarchy mounted" >&2; exit 1; }
make_work systemd
echo "tree $dir, $rounds rounds, logs in $work; $(machine)"

# The tool running, to end if the script is interrupted; nspawn's cgroup, to remove.
pid= cgroup=
cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    if [ -n "$cgroup" ] && [ -d "$cgroup" ]; then
        find "$cgroup" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    fi
}
trap cleanup EXIT

now() { date +%s%N; }

# state_of TOOL: systemctl is-system-running inside the running container.
state_of() {
    case $1 in
    contain) timeout 5 "$INJECT" "$pid" systemctl is-system-running 2>/dev/null || true ;;
    nspawn)
        local leader
        leader=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null | cut -d' ' -f1)
        [ -z "$leader" ] || timeout 5 nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null || true
        ;;
    esac
}

# one TOOL ROUND: boots, waits for the end of the boot, stops with SIGTERM; appends the boot
# and shutdown times (ms) to $work/TOOL.boot and $work/TOOL.stop.
one() {
    local tool=$1 round=$2 log=$work/$1.$2.log started booted stopping state
    started=$(now)
    case $tool in
    contain)
        "$CONTAIN" "$dir" /sbin/init </dev/null >"$log" 2>&1 &
        pid=$!
        ;;
    nspawn)
        cgroup=$v2/nspawn-bench.$$
        mkdir "$cgroup"
        (
            echo "$BASHPID" >"$cgroup/cgroup.procs"
            exec systemd-nspawn -q -D "$dir" -b --register=no --keep-unit \
                --private-users="$owner" --console=read-only </dev/null >"$log" 2>&1
        ) &
        pid=$!
        ;;
    esac
    until state=$(state_of "$tool") && [ "$state" = running ] || [ "$state" = degraded ]; do
        [ -d "/proc/$pid" ] || { echo "bench: $tool ended during the boot: $log" >&2; exit 1; }
        [ $(($(now) - started)) -lt 120000000000 ] || { echo "bench: $tool: no boot in 120 s" >&2; exit 1; }
        sleep 0.02
    done
    booted=$(now)
    kill -TERM "$pid"
    wait "$pid" || true
    stopping=$(($(now) - booted))
    pid=
    echo $(((booted - started) / 1000000)) >>"$work/$tool.boot"
    echo $((stopping / 1000000)) >>"$work/$tool.stop"
    printf '  round %d %-7s boot %5d ms (%s)  shutdown %5d ms\n' "$round" "$tool" \
        $(((booted - started) / 1000000)) "$state" $((stopping / 1000000))
    if [ "$tool" = nspawn ]; then
        find "$cgroup" -depth -type d -exec rmdir {} \;
        cgroup=
    fi
}

for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then
        one contain "$round"
        one nspawn "$round"
    else
        one nspawn "$round"
        one contain "$round"
    fi
done

echo
echo "median over $rounds rounds (ms):      boot   shutdown"
for tool in contain nspawn; do
    printf '  %-20s %10s %10s\n' "$tool" "$(median <"$work/$tool.boot")" "$(median <"$work/$tool.stop")"
done
