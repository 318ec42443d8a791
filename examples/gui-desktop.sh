#!/bin/sh
# A locked-down desktop in a container, as EasyOS runs one: a Debian tree with a small desktop
# (the jwm window manager and xterm) boots its own init fullscreen in a display of its own, with
# capabilities dropped, and inject opens one more terminal on that desktop. Then the container
# is shut down (SIGPWR: a clean halt), which ends its display too.
#
# Usage: examples/gui-desktop.sh DIR
#
#   DIR is bootstrapped first with examples/debian.sh (sysvinit, plus jwm, xterm and
#   x11-xserver-utils) unless it holds a tree already. The desktop session is an inittab entry
#   that init respawns: jwm and an xterm, as `user` (uid 1000), with the container's cookie.
#
# Environment:
#   CONTAIN, INJECT, PSEUDO  the binaries (default: target/debug/ of this checkout, else PATH)
#   DISPLAY                  where the desktop shows. Without one, an Xvfb stands in and the
#                            desktop is saved as a screenshot, $SHOT (default
#                            examples/gui-desktop.png; needs xvfb, xauth, imagemagick).
#   CAPS                     what --cap-drop drops (default below)
#
# Needs mmdebstrap, uidmap, subordinate IDs and the Debian mirror for the bootstrap (see
# examples/debian.sh), and xserver-xephyr. The tests do not run it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/lib.sh
. "$here/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
bin() { if [ -x "$here/../target/debug/$1" ]; then echo "$here/../target/debug/$1"; else echo "$1"; fi; }
contain=${CONTAIN:-$(bin contain)}
inject=${INJECT:-$(bin inject)}
export PSEUDO="${PSEUDO:-$(bin pseudo)}"
caps=${CAPS:-sys_module,sys_rawio,sys_time,syslog,net_admin,mac_admin,mac_override}

if [ ! -x "$dir/sbin/init" ]; then
    PACKAGES=jwm,xterm,x11-xserver-utils BOOT=no "$here/debian.sh" "$dir"
fi

# The desktop session and its user, written inside the tree as its root.
"$PSEUDO" chroot "$dir" /bin/sh -s <<'EOF'
set -eu
if ! grep -q '^user:' /etc/passwd; then
    echo 'user:x:1000:1000:Desktop user:/home/user:/bin/bash' >>/etc/passwd
    echo 'user:x:1000:' >>/etc/group
    echo 'user:*:19000:0:99999:7:::' >>/etc/shadow
    mkdir -p /home/user
    chown 1000:1000 /home/user
fi
cat >/usr/local/sbin/desktop <<'SESSION'
#!/bin/sh
# The desktop session, respawned by init: the container's display (contain --gui) is :0 and its
# cookie root's; the user gets a copy.
install -o 1000 -g 1000 -m 600 /tmp/.X11-unix/Xauthority /home/user/.Xauthority
exec setpriv --reuid=1000 --regid=1000 --init-groups env -i HOME=/home/user USER=user \
    PATH=/usr/local/bin:/usr/bin:/bin DISPLAY=:0 XAUTHORITY=/home/user/.Xauthority \
    sh -c 'cd; xsetroot -solid "#3a6ea5"; xterm -geometry 80x24+40+40 & exec jwm'
SESSION
chmod 755 /usr/local/sbin/desktop
grep -q '^x1:' /etc/inittab || echo 'x1:2345:respawn:/usr/local/sbin/desktop' >>/etc/inittab
EOF

work=$(mktemp -d /tmp/contain-desktop.XXXXXX)
xvfb=
box=
cleanup() {
    [ -z "$box" ] || kill -KILL "$box" 2>/dev/null || true
    [ -z "$xvfb" ] || kill "$xvfb" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -z "${DISPLAY:-}" ]; then
    # No display: an Xvfb stands in.
    start_xvfb "$work" 1024x768x24
    shot=${SHOT:-$here/gui-desktop.png}
fi

echo "== booting $dir fullscreen on $DISPLAY, --cap-drop $caps"
"$contain" --gui xephyr --gui-size full --cap-drop "$caps" "$dir" /sbin/init \
    </dev/null >"$work/console" 2>&1 &
box=$!

# Up once the session's window manager runs.
i=0
until "$inject" "$box" pgrep -x jwm >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$box" 2>/dev/null; then
        echo "$0: the desktop did not start; console:" >&2
        tail -n 20 "$work/console" >&2
        exit 1
    fi
    sleep 0.1
done
echo "== the desktop runs:"
"$inject" "$box" ps -o pid,user,args -C jwm,xterm,init

echo "== inject: one more terminal on the container's desktop, as user"
"$inject" "$box" /bin/sh -c 'echo "inject sees DISPLAY=$DISPLAY XAUTHORITY=$XAUTHORITY"'
"$inject" "$box" setpriv --reuid=1000 --regid=1000 --init-groups env HOME=/home/user \
    XAUTHORITY=/home/user/.Xauthority xterm -geometry 60x10+300+300 \
    -e sh -c 'echo "Entered with inject, as $(id -un)."; echo; uname -a; sleep 600' &
sleep 2

if [ -n "${shot:-}" ]; then
    xwd -silent -root | convert xwd:- "$shot"
    echo "== wrote $shot"
fi

echo "== shutting down (SIGPWR to contain: init halts)"
kill -PWR "$box"
status=0
wait "$box" || status=$?
box=
echo "== contain exited with $status"
