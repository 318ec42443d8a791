#!/usr/bin/env bash
# Resident memory of the processes that stay while a container runs: the contain supervisor,
# inject waiting for its command, and pseudo waiting for its command. Each is started as
# BENCH_USER (as root; else the caller) with a command that sleeps, and its /proc/PID/status
# (VmRSS, RssAnon, RssFile) is read once it waits; bwrap (its parent process, which stays
# while the sandbox runs) is measured the same way for comparison. ROUNDS rounds (default 5);
# the median of each is printed, in KiB, with /proc/PID/smaps_rollup's Pss of the last round.
#
# Usage: bench/memory.sh [BINDIR]   (default: the installed tools in PATH; bench/build.sh's
#                                    directory to measure a build)
source "$(dirname "$0")/lib.sh"

need "bubblewrap busybox-static" bwrap busybox
rounds=${ROUNDS:-5}
bindir=${1:-$(dirname "$(command -v contain)")}
make_work memory
unprivileged_user
for tool in pseudo contain inject; do
    install_tool "$bindir/$tool" >/dev/null
done
busybox_rootfs "$work/root"
chown -R "$bench_user" "$work/root"

# memory_of PID: waits until PID has a child (the sleeping command or init), then
# prints its memory line "rss anon file pss" in KiB.
memory_of() {
    local pid=$1 i
    for i in $(seq 100); do
        [ -n "$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)" ] && break
        sleep 0.02
    done
    sleep 0.2
    awk '/^VmRSS/ { r = $2 } /^RssAnon/ { a = $2 } /^RssFile/ { f = $2 }
         END { printf "%s %s %s", r, a, f }' "/proc/$pid/status"
    awk '/^Pss:/ { printf " %s\n", $2 }' "/proc/$pid/smaps_rollup"
}

measure() { # measure NAME COMMAND...: starts COMMAND (it execs the tool) and records its memory
    local name=$1 pid
    shift
    "$@" &
    pid=$!
    memory_of "$pid" >>"$work/memory-$name"
    wait "$pid" || true
}

for round in $(seq "$rounds"); do
    measure contain "${boot_as[@]}" "$work/contain" -c "$work/root" /bin/sleep 1 </dev/null
    "${boot_as[@]}" "$work/contain" -c "$work/root" /bin/sleep 3 </dev/null &
    supervisor=$!
    sleep 0.3
    measure inject "${boot_as[@]}" "$work/inject" "$supervisor" /bin/sleep 1 </dev/null
    wait "$supervisor"
    measure pseudo "${boot_as[@]}" "$work/pseudo" /bin/sleep 1 </dev/null
    measure bwrap "${boot_as[@]}" bwrap --unshare-all --bind "$work/root" / --dev /dev \
        --proc /proc /bin/sleep 1 </dev/null
    echo "round $round of $rounds" >&2
done

printf '%-8s %8s %8s %8s %8s   (KiB, median of %s rounds; Pss of the last)\n' \
    process VmRSS RssAnon RssFile Pss "$rounds"
for name in pseudo contain inject bwrap; do
    printf '%-8s %8s %8s %8s %8s\n' "$name" \
        "$(cut -d' ' -f1 "$work/memory-$name" | median)" "$(cut -d' ' -f2 "$work/memory-$name" | median)" \
        "$(cut -d' ' -f3 "$work/memory-$name" | median)" "$(tail -1 "$work/memory-$name" | cut -d' ' -f4)"
done
echo "raw: $work"
