#!/usr/bin/env bash
# A load, fault and fuzz campaign against pseudo, contain and inject. It reports failures and
# anything left behind, and exits 1 if there was any.
#
#   1. Sequential: SEQ starts of each mode one after another: pseudo, contain -c, contain with
#      its console, contain --net pasta, contain with -i and -o hooks, inject into a running
#      container. Every start must exit 0.
#   2. Concurrent: CONC starts of each mode at once, likewise.
#   3. kill -9: KILLS trials; each starts one mode with `sleep` as its command (and, for the
#      hooks mode, a hook that leaves a `sleep` running in the background and one that is slow),
#      waits a random time within the mode's start (0-20 ms, with hooks 0-50, with pasta 0-150:
#      creating the namespaces, the maps, pasta, the hooks, the exec, or just after), SIGKILLs
#      the tool, and then waits up to 5 s for every
#      process of the trial (found by a token in its command line, whatever its uid) to end.
#      Half the contain trials run init as `su user -c` (a credential change, which clears the
#      parent-death signal) and inject trials inject such a `su` as the command.
#   4. Fuzz: FUZZ runs of a random tool with random arguments (options and values of the
#      tools, valid and not, and random bytes): no run may panic, and a failure of the tool
#      itself (125, 126, 127) must be one line `tool: ...` of printable text.
#   Leaks, checked around it all: the host's mount table, pasta processes left without their
#   contain, the descriptors the command of each mode sees (only 0, 1 and 2 may be open).
#
# The property tests of the parsers are the other half of the fuzzing (cargo test -p common
# --test parsers with PROPTEST_CASES; see bench/README.md).
#
# Runs the tools as BENCH_USER (default contain-test, which the tests create when run as root)
# when started as root, else as the caller; as root it can also see what is left running under
# the user's subordinate IDs.
#
# Usage: bench/stress.sh
# Environment: BIN (directory of the three binaries; default: the static release build of
# bench/build.sh, built here), SEQ (default 100), CONC (default 20), KILLS (default 200),
# FUZZ (default 2000), BENCH_USER. Needs busybox-static, uidmap, passt (and /dev/net/tun
# usable by the user) and util-linux (setpriv, runuser).
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

seq_runs=${SEQ:-100}
conc_runs=${CONC:-20}
kills=${KILLS:-200}
fuzz_runs=${FUZZ:-2000}
need "uidmap passt busybox-static util-linux procps" newuidmap pasta /bin/busybox setpriv pgrep
BIN=${BIN:-$(release_dir)}
unprivileged_user
make_work stress
for tool in pseudo contain inject; do
    install_tool "$BIN/$tool" >/dev/null
done
dir=$work/rootfs
busybox_rootfs "$dir"
printf 'user:x:1000:1000:user:/tmp:/bin/sh\n' >>"$dir/etc/passwd"
[ ${#run_as[@]} -eq 0 ] || chown -R "$bench_user:" "$work"
as_user=("${boot_as[@]}")
[ ${#as_user[@]} -eq 0 ] || as_user+=(--)
cd "$work"
failures=0
fail() {
    echo "FAILED: $*"
    failures=$((failures + 1))
}

# The running container inject enters; ended on every way out.
"${as_user[@]}" ./contain -c "$dir" sh -c "trap 'exit 0' TERM; sleep 999$$ & wait" \
    </dev/null >/dev/null 2>&1 &
target=$!
# shellcheck disable=SC2064 # $target and $work are fixed now
trap "kill $target 2>/dev/null; wait $target 2>/dev/null; rm -rf '$work'" EXIT
until pgrep -f "^sleep 999$$\$" >/dev/null; do
    kill -0 "$target" 2>/dev/null || { echo "stress: the target container did not start" >&2; exit 1; }
    sleep 0.05
done
echo "== as $bench_user ($uid), $(machine), work $work"

mounts_before=$(wc -l </proc/self/mountinfo)

# start MODE COMMAND...: runs the mode's tool as the user, COMMAND inside, in the background;
# $! is the tool's PID. Output goes to $work/out.
start() {
    local mode=$1
    shift
    # The background subshell execs the tool, so that $! is the tool itself (setpriv execs too).
    case $mode in
    pseudo) exec "${as_user[@]}" ./pseudo "$@" ;;
    contain-c) exec "${as_user[@]}" ./contain -c "$dir" "$@" ;;
    console) exec "${as_user[@]}" ./contain "$dir" "$@" ;;
    pasta) exec "${as_user[@]}" ./contain -c --net pasta "$dir" "$@" ;;
    hooks) exec "${as_user[@]}" ./contain -c -i 'test -d proc' -o 'test -n "$CONTAIN_PID"' "$dir" "$@" ;;
    inject) exec "${as_user[@]}" ./inject "$target" "$@" ;;
    esac </dev/null >>"$work/out" 2>&1 &
}
modes=(pseudo contain-c console pasta hooks inject)

echo
echo "1. sequential: $seq_runs starts of each of ${modes[*]}"
for mode in "${modes[@]}"; do
    bad=0
    t0=$(date +%s.%N)
    for _ in $(seq "$seq_runs"); do
        start "$mode" true
        wait $! || bad=$((bad + 1))
    done
    t1=$(date +%s.%N)
    printf '  %-10s %4d starts, %d failed, %6.1f ms each\n' "$mode" "$seq_runs" "$bad" \
        "$(awk -v a="$t0" -v b="$t1" -v n="$seq_runs" 'BEGIN { print (b - a) * 1000 / n }')"
    [ "$bad" = 0 ] || fail "$bad of $seq_runs sequential $mode starts"
done

echo
echo "2. concurrent: $conc_runs starts at once of each mode"
for mode in "${modes[@]}"; do
    pids=()
    for _ in $(seq "$conc_runs"); do
        start "$mode" true
        pids+=($!)
    done
    bad=0
    for pid in "${pids[@]}"; do
        wait "$pid" || bad=$((bad + 1))
    done
    printf '  %-10s %4d at once, %d failed\n' "$mode" "$conc_runs" "$bad"
    [ "$bad" = 0 ] || fail "$bad of $conc_runs concurrent $mode starts"
done

echo
echo "3. kill -9: $kills trials at a random point of the start"
leaked=0
declare -A trials
for i in $(seq "$kills"); do
    mode=${modes[$((RANDOM % ${#modes[@]}))]}
    token=7$$$i
    su_mode=$((RANDOM % 2))
    command=(sleep "9$token")
    [ "$su_mode" = 0 ] || [ "$mode" = pseudo ] || command=(su user -c "exec sleep 9$token")
    if [ "$mode" = hooks ]; then
        "${as_user[@]}" ./contain -c -o "sleep 8$token >/dev/null 2>&1 & sleep 0.0$((RANDOM % 5))" \
            "$dir" "${command[@]}" </dev/null >>"$work/out" 2>&1 &
    else
        start "$mode" "${command[@]}"
    fi
    tool=$!
    # Somewhere in the mode's start (measured: pasta takes about 100 ms, a hook 20 ms more).
    case $mode in
    pasta) range=150 ;;
    hooks) range=50 ;;
    *) range=20 ;;
    esac
    sleep "$(printf '0.%03d' $((RANDOM % range)))"
    kill -9 "$tool" 2>/dev/null || true
    wait "$tool" 2>/dev/null || true
    left=""
    for _ in $(seq 100); do
        left=$(pgrep -f "[89]$token" || true)
        [ -n "$left" ] || break
        sleep 0.05
    done
    key=$mode
    [ "${command[0]}" = sleep ] || key="$mode (su)"
    trials[$key]=$((${trials[$key]:-0} + 1))
    if [ -n "$left" ]; then
        leaked=$((leaked + 1))
        echo "  left running after kill -9 of $key: $(ps -o pid=,user=,args= -p "${left//$'\n'/,}")"
        # shellcheck disable=SC2086 # PIDs, one per line
        kill -9 $left 2>/dev/null || true
    fi
done
for key in "${!trials[@]}"; do
    printf '  %-14s %4d trials\n' "$key" "${trials[$key]}"
done | sort
echo "  processes left running: $leaked trials"
[ "$leaked" = 0 ] || fail "$leaked kill -9 trials left processes running"

echo
echo "4. fuzz: $fuzz_runs runs with random arguments"
pool=(-u -g -c -n -m -p --net pasta private host -p --publish --cap-drop --cap-add --user
    --no-new-privs --help-not 0:0:1 0:0:1,1:1:1 1:2:3 0:4294967295:2 all sys_admin cap_chown
    1000 1000:1000 4294967295 80 80:8080/udp 0:0 -- - "" "$dir" "$dir" true id)
panics=0
bad_lines=0
for i in $(seq "$fuzz_runs"); do
    tool=$(printf '%s\n' pseudo contain inject | shuf -n1)
    args=()
    [ "$tool" = inject ] && [ $((RANDOM % 2)) = 0 ] && args+=("$target")
    [ "$tool" = contain ] && [ $((RANDOM % 2)) = 0 ] && args+=("$dir")
    for _ in $(seq $((RANDOM % 5))); do
        if [ $((RANDOM % 4)) = 0 ]; then
            args+=("$(head -c $((RANDOM % 12 + 1)) /dev/urandom | tr -d '\000')")
        else
            args+=("${pool[$((RANDOM % ${#pool[@]}))]}")
        fi
    done
    # Never a shell waiting for input, nor a long command: end with one that exits.
    args+=(true)
    status=0
    "${as_user[@]}" timeout 20 "./$tool" "${args[@]}" </dev/null >/dev/null 2>"$work/err" ||
        status=$?
    if [ "$status" = 101 ] || [ "$status" = 134 ] || grep -q 'panicked' "$work/err"; then
        panics=$((panics + 1))
        echo "  panic ($status): $tool $(printf '%q ' "${args[@]}")"
    elif [ "$status" -ge 125 ] && [ "$status" -le 127 ]; then
        # One line, starting with the tool's name, no control character but its newline.
        if [ "$(wc -l <"$work/err")" != 1 ] || ! grep -q "^$tool: " "$work/err" ||
            LC_ALL=C grep -q '[[:cntrl:]]' "$work/err"; then
            bad_lines=$((bad_lines + 1))
            echo "  not one printable line ($status): $tool $(printf '%q ' "${args[@]}")"
            echo "    $(head -c 300 "$work/err" | od -c | head -3)"
        fi
    fi
done
echo "  panics: $panics; messages not one printable line: $bad_lines"
[ "$panics" = 0 ] || fail "$panics fuzzed runs panicked"
[ "$bad_lines" = 0 ] || fail "$bad_lines fuzzed runs printed something else than one line"

echo
echo "leaks"
bad=0
: >"$work/out"
for mode in "${modes[@]}"; do
    start "$mode" ls -1 /proc/self/fd
    wait $! || bad=$((bad + 1))
done
# Each listing is ls's own: 0, 1, 2 and the directory it reads (3).
fds=$(tr -d '\r' <"$work/out" | grep -xE '[0-9]+' | sort -un | tr '\n' ' ')
echo "  descriptors the command sees (all modes): $fds"
[ "$fds" = "0 1 2 3 " ] || fail "a command saw descriptors other than 0, 1, 2: $fds"
[ "$bad" = 0 ] || fail "$bad modes failed to list their descriptors"
mounts_after=$(wc -l </proc/self/mountinfo)
echo "  host mount table: $mounts_before lines before, $mounts_after after"
[ "$mounts_after" -le "$mounts_before" ] || fail "the host's mount table grew"
orphans=$(ps -eo pid=,ppid=,user=,comm= | awk -v u="$bench_user" \
    '$3 == u && ($4 ~ /^pasta|^passt/) { print $1 " (parent " $2 ")" }' |
    while read -r pid rest; do
        parent=${rest#(parent }
        parent=${parent%)}
        [ "$(ps -o comm= -p "$parent" 2>/dev/null)" = contain ] || echo "$pid"
    done)
echo "  pasta left without its contain: ${orphans:-none}"
[ -z "$orphans" ] || fail "pasta left running: $orphans"

echo
if [ "$failures" = 0 ]; then
    echo "stress: no failures, nothing left behind"
else
    echo "stress: $failures failed checks"
    exit 1
fi
