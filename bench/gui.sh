#!/usr/bin/env bash
# What `contain --gui xephyr` costs next to its parts, timed by hyperfine, and the memory of
# the nested server.
#
# `contain -c --gui xephyr DIR xdpyinfo` (the display started in its own namespaces and waited
# for through -displayfd, the container booted and handed the socket, a client's round trips,
# everything ended) beside its parts: the same Xephyr started alone until ready (-displayfd,
# then ended) and `contain -c DIR /bin/true`. The target is the whole within 1.1x of the sum of
# the parts: readiness by notification, no polling, and little of our own around it.
#
# The host display is an Xvfb started here, in a mount namespace of its own (its /tmp private).
# DIR is a busybox root file system with the host's /usr bound in by an -i hook (xdpyinfo is a
# dynamic program); the hook is in every contain command.
#
# Usage: bench/gui.sh
# Environment: CONTAIN (default: the static release build of bench/build.sh, built here), RUNS
# (default 30), BENCH_USER. Needs the Debian packages hyperfine, xvfb, xserver-xephyr,
# x11-utils, xauth, busybox-static and uidmap.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-30}
need "hyperfine xvfb xserver-xephyr x11-utils xauth uidmap busybox-static" \
    hyperfine Xvfb Xephyr xdpyinfo xauth newuidmap /bin/busybox
CONTAIN=${CONTAIN:-$(release_dir -p contain)/contain}
unprivileged_user
contain_bench gui 'mkdir "$dir/usr"; ln -s usr/lib "$dir/lib"; ln -s usr/lib64 "$dir/lib64"'
hook='mount -n --rbind /usr usr'

# The host display, as the benchmark user; ended on the way out.
cookie=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
: >"$work/auth"
xauth -q -f "$work/auth" add :0 MIT-MAGIC-COOKIE-1 "$cookie"
[ ${#run_as[@]} -eq 0 ] || chown "$bench_user:" "$work/auth"
"${boot_as[@]}" unshare -Urm sh -c 'mount -n --bind "$1" /mnt && mount -n -t tmpfs tmpfs /tmp &&
    mkdir /tmp/work && mount -n --move /mnt /tmp/work &&
    exec Xvfb -displayfd 3 -nolisten tcp -auth /tmp/work/auth -screen 0 1280x1024x24' \
    sh "$work" 3>"$work/number" 2>/dev/null &
xvfb=$!
# shellcheck disable=SC2064 # $work and $xvfb are fixed now
trap "kill $xvfb 2>/dev/null; rm -rf '$work/rootfs' '$work/contain'" EXIT
until [ -s "$work/number" ]; do
    kill -0 "$xvfb" 2>/dev/null || { echo "bench: Xvfb did not start" >&2; exit 1; }
    sleep 0.05
done
export DISPLAY=:$(cat "$work/number")
export XAUTHORITY=$work/client-auth
: >"$XAUTHORITY"
xauth -q -f "$XAUTHORITY" add "$DISPLAY" MIT-MAGIC-COOKIE-1 "$cookie"
[ ${#run_as[@]} -eq 0 ] || chown "$bench_user:" "$XAUTHORITY"

# The nested server alone, with contain's options, until it accepts clients; then ended. Like
# contain, it runs with a private /tmp (its socket and lock file stay off the host's).
cat >"$work/xephyr-alone" <<'SCRIPT'
#!/bin/sh
# $1: the work directory, with the host display's cookie.
exec unshare -Urm sh -c '
mount -n --bind "$1" /mnt && mount -n -t tmpfs tmpfs /tmp && mkdir /tmp/work &&
    mount -n --move /mnt /tmp/work && mkfifo /tmp/ready || exit 1
export XAUTHORITY=/tmp/work/client-auth
Xephyr :1 -displayfd 3 -nolisten tcp -nolisten local -extension MIT-SHM -noreset \
    -title alone -screen 1024x768 3>/tmp/ready 2>/dev/null &
read -r number </tmp/ready || exit 1
kill -KILL $!
wait' sh "$1"
SCRIPT
chmod 755 "$work/xephyr-alone"
# The same without Xephyr (something else writes the line): what the reference's own scaffolding
# (unshare, sh, three mount(8) and mkfifo) costs, to take off it.
sed 's/^Xephyr .*/echo 10 >\/tmp\/ready \&/; /^    -title alone/d' "$work/xephyr-alone" >"$work/scaffold"
chmod 755 "$work/scaffold"

whole='contain -c --gui xephyr -i HOOK DIR xdpyinfo'
alone='Xephyr alone until ready'
plain='contain -c -i HOOK DIR /bin/true'
client='xdpyinfo on the host display'
scaffold="the reference's scaffolding alone"
hyperfine_export "$work/gui" 3 "$runs" "${run_as[@]}" env DISPLAY="$DISPLAY" \
    XAUTHORITY="$XAUTHORITY" :: \
    "$whole" "$contain -c --gui xephyr -i '$hook' $dir /usr/bin/xdpyinfo" \
    "$alone" "$work/xephyr-alone $work" \
    "$plain" "$contain -c -i '$hook' $dir /bin/true" \
    "$client" "xdpyinfo" \
    "$scaffold" "$work/scaffold $work"
echo
echo "start-up of a container with a display (mean, ratio to '$whole'):"
print_means "$work/gui.csv" "$whole"
echo "'$whole' against the sum of its parts:"
awk -F, -v whole="$whole" -v alone="$alone" -v plain="$plain" -v client="$client" \
    -v scaffold="$scaffold" '
    NR > 1 { mean[$1] = $2 }
    END {
        sum = mean[alone] + mean[plain]
        printf "  the parts: %s + %s = %.1f ms: %.2fx (target <= 1.1x)\n",
            alone, plain, sum * 1000, mean[whole] / sum
        sum -= mean[scaffold]
        printf "  without the scaffolding (- %.1f ms) = %.1f ms: %.2fx\n",
            mean[scaffold] * 1000, sum * 1000, mean[whole] / sum
        sum += mean[client]
        printf "  with the client: + %s = %.1f ms: %.2fx\n", client, sum * 1000, mean[whole] / sum
    }' "$work/gui.csv"

# The server's memory, while a container uses it.
echo
"${run_as[@]}" env DISPLAY="$DISPLAY" XAUTHORITY="$XAUTHORITY" \
    "$contain" -c --gui xephyr -i "$hook" "$dir" /bin/sh -c 'xdpyinfo >/dev/null; sleep 3' &
box=$!
server=
for _ in $(seq 100); do
    server=$(pgrep -n -f "Xephyr .*-title contain $dir" || true)
    [ -z "$server" ] || break
    sleep 0.05
done
if [ -n "$server" ]; then
    sleep 1
    echo "Xephyr's memory (PID $server, 1024x768):" \
        "$(awk '/^VmRSS|^VmHWM/ { printf "%s %s kB  ", $1, $2 }' "/proc/$server/status")" \
        "$(awk '/^Pss:/ { printf "Pss %s kB", $2 }' "/proc/$server/smaps_rollup")"
fi
wait "$box"
echo
echo "exports: $work/gui.{json,csv}"
