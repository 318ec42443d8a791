#!/bin/sh
# Boots a Debian tree made by examples/debian.sh with contain, as an unprivileged user, twice:
# first sharing the host's network (contain -n), then in a network namespace of its own. Each
# time init runs in the background (stdin from /dev/null, the console into a log), and once its
# services run, inject shows them with ps. The first boot ends with `inject PID halt`, the
# second with a signal to contain (SIGPWR for sysvinit, SIGINT for runit), with time to shut
# down (--stop-timeout). contain must then exit with 0.
#
# systemd (INIT=systemd in debian.sh): each boot waits for `systemctl is-system-running` too;
# the first boot is rebooted from inside (systemctl reboot) and, once up again, powered off
# (systemctl poweroff); the second is stopped with SIGTERM, which contain passes on as
# systemd's halt request (SIGRTMIN+3). systemd needs a cgroup v2 subtree it may write: run as
# root (contain makes one), or from a cgroup delegated to you, e.g.
#   systemd-run --user --scope -p Delegate=yes examples/debian-boot.sh DIR
#
# Usage: examples/debian-boot.sh DIR
#
# Environment:
#   CONTAIN, INJECT  the binaries (default: contain and inject from PATH)
#   LOGS             where the console logs go (default: a new directory under /tmp)
#
# Exits with 1 (and the end of the console log) when a boot or shutdown does not happen in
# time; the container is then killed.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
contain=${CONTAIN:-contain}
inject=${INJECT:-inject}
logs=${LOGS:-$(mktemp -d /tmp/debian-boot.XXXXXX)}

# Seconds allowed for the boot to start the services, and for a shutdown.
boot_limit=60
halt_limit=60

# runit-init makes /sbin/init a symlink; sysvinit-core installs a program there and reads
# /etc/inittab (which may stay behind when sysvinit-core is replaced by runit-init).
case $(readlink "$dir/sbin/init" || true) in
*runit*)
    init=runit stop_signal=INT
    ;;
*systemd*)
    init=systemd stop_signal=TERM
    ;;
*)
    [ -f "$dir/etc/inittab" ] || { echo "$0: $dir has neither runit nor sysvinit" >&2; exit 1; }
    init=sysvinit stop_signal=PWR
    ;;
esac

# True while process $1 has not ended (a zombie has ended: kill -0 would still find it).
running() {
    [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# Seconds since $1 (from date +%s%N), to a tenth.
since() {
    tenths=$((($(date +%s%N) - $1) / 100000000))
    echo "$((tenths / 10)).$((tenths % 10))"
}

# A container still running when the script ends (an error, ^C) is killed: contain's death
# takes the container with it.
pid=
trap 'if [ -n "$pid" ] && running "$pid"; then kill -KILL "$pid"; fi' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "$0: $1; the end of $log:" >&2
    tail -n 20 "$log" | tr -d '\r' >&2
    exit 1
}

# boot NAME STOP [contain options]: boots, waits for the services, shows them, stops with
# STOP (halt or signal), and checks contain's exit status.
boot() {
    name=$1 stop=$2
    shift 2
    log=$logs/$name.log
    echo
    echo "\$ contain${*:+ $*} $dir /sbin/init </dev/null >$log 2>&1 &"
    started=$(date +%s%N)
    "$contain" "$@" "$dir" /sbin/init </dev/null >"$log" 2>&1 &
    pid=$!

    # The services: cron from the init scripts, and the console's getty.
    until timeout 10 "$inject" "$pid" sh -c 'pgrep -x cron && pgrep -x agetty' >/dev/null 2>&1
    do
        running "$pid" || fail "contain ended during the boot"
        [ $(($(date +%s) - started / 1000000000)) -lt $boot_limit ] || fail "no cron and getty after $boot_limit s"
        sleep 0.5
    done
    echo "services running $(since "$started") s after the start"
    if [ "$init" = systemd ]; then
        echo "\$ inject $pid systemctl is-system-running --wait"
        timeout 60 "$inject" "$pid" systemctl is-system-running --wait ||
            fail "systemd is not running"
        echo "running $(since "$started") s after the start"
        # The console's getty prints its prompt a moment after it starts.
        until grep -q ' login: ' "$log"; do
            [ $(($(date +%s) - started / 1000000000)) -lt $boot_limit ] || fail "no login prompt on the console after $boot_limit s"
            sleep 0.2
        done
        echo "login prompt on the console $(since "$started") s after the start"
    fi

    echo "\$ inject $pid ps ax"
    timeout 10 "$inject" "$pid" ps ax
    echo "\$ inject $pid cat /proc/net/dev    # the network interfaces it sees"
    timeout 10 "$inject" "$pid" cat /proc/net/dev | awk -F: 'NR > 2 { gsub(/ /, "", $1); printf " %s", $1 } END { print "" }'

    stopped=$(date +%s%N)
    case $stop in
    reboot)
        # /run is a tmpfs of each boot: the mark is gone once the container has booted again.
        echo "\$ inject $pid systemctl reboot"
        timeout 30 "$inject" "$pid" sh -c ': >/run/before-reboot && systemctl reboot' ||
            fail "reboot failed"
        until [ "$(timeout 10 "$inject" "$pid" sh -c \
            'test -e /run/before-reboot || systemctl is-system-running' 2>/dev/null)" = running ]
        do
            running "$pid" || fail "contain ended during the reboot"
            [ $(($(date +%s) - stopped / 1000000000)) -lt $boot_limit ] || fail "not up again $boot_limit s after the reboot"
            sleep 0.5
        done
        echo "running again $(since "$stopped") s after the reboot"
        stopped=$(date +%s%N) stop=poweroff
        echo "\$ inject $pid systemctl poweroff"
        timeout 30 "$inject" "$pid" systemctl poweroff || fail "poweroff failed"
        ;;
    halt)
        echo "\$ inject $pid /sbin/halt"
        timeout 30 "$inject" "$pid" /sbin/halt || fail "halt failed"
        ;;
    *)
        echo "\$ kill -$stop $pid"
        kill "-$stop" "$pid"
        ;;
    esac
    while running "$pid"; do
        [ $(($(date +%s) - stopped / 1000000000)) -lt $halt_limit ] || fail "still running $halt_limit s after $stop"
        sleep 0.2
    done
    status=0
    wait "$pid" || status=$?
    echo "contain exited with $status, $(since "$stopped") s after $stop"
    [ "$status" -eq 0 ] || fail "contain exited with $status"
}

echo "I: booting $dir ($init), console logs in $logs"
if [ "$init" = systemd ]; then
    boot host-network reboot -n
else
    boot host-network halt -n
fi
# runit warns for 14 s before it halts: more than contain's default 10 s of grace.
boot own-network "$stop_signal" --stop-timeout "$halt_limit"
