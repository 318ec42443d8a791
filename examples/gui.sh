#!/bin/sh
# A screenshot of a container's programs in their own display, made without a screen:
# an Xvfb stands in for the user's display, `contain --gui xephyr` shows the container's display
# in a window on it, the container draws (xsetroot, xlogo, xeyes, xclock, xmessage from the
# host's /usr, bound in read-only), and xwd takes the nested window from the Xvfb's screen.
# With GUI=xpra the programs' windows land on the Xvfb's screen each by itself, and xwd takes
# the whole screen.
#
# Usage: examples/gui.sh [OUT.png]    (default: examples/gui-$GUI.png)
#
# Environment:
#   CONTAIN  the binary (default: target/debug/contain of this checkout, else contain in PATH)
#   GUI      xephyr (the default) or xpra
#
# Needs xvfb, xserver-xephyr (or xpra and python3-gi-cairo), x11-apps, x11-utils,
# x11-xserver-utils, xauth and imagemagick (Debian package names), and util-linux's unshare.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/lib.sh
. "$here/lib.sh"
mode=${GUI:-xephyr}
out=${1:-$here/gui-$mode.png}
contain=${CONTAIN:-$here/../target/debug/contain}
[ -x "$contain" ] || contain=contain
for tool in Xvfb xwd convert xauth unshare; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d /tmp/contain-gui-example.XXXXXX)
xvfb=
box=
cleanup() {
    [ -z "$box" ] || kill "$box" 2>/dev/null || true
    [ -z "$xvfb" ] || kill "$xvfb" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The host display.
start_xvfb "$work" 1024x640x24

# The container: a skeleton whose /usr and /etc/fonts are the host's (bound in by the -i hook).
root="$work/root"
mkdir -p "$root/usr" "$root/proc" "$root/sys" "$root/dev" "$root/etc/fonts" "$root/tmp"
chmod 1777 "$root/tmp"
for d in bin sbin lib lib64; do
    if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"; else mkdir "$root/$d"; fi
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
hook='for d in usr bin sbin lib lib64; do [ -L $d ] || mount -n --rbind /$d $d; done
    [ ! -d /etc/fonts ] || mount -n --rbind /etc/fonts etc/fonts'

"$contain" -c --gui "$mode" --gui-size 640x400 -i "$hook" "$root" /bin/sh -c '
    trap "exit 0" TERM
    export XDG_CACHE_HOME=/tmp/.cache
    xsetroot -solid "#2f5f8f"
    xlogo -geometry 150x150+20+20 &
    xeyes -geometry 180x120+200+30 &
    xclock -update 1 -geometry 150x150+420+20 &
    xmessage -geometry +150+240 "Hello from $(hostname), in a display of its own:
DISPLAY=$DISPLAY, XAUTHORITY=$XAUTHORITY" &
    # Ready once the four have mapped their windows.
    until [ "$(xwininfo -root -children | grep -c "^ *0x.*\".*\": (")" -ge 4 ]; do
        sleep 0.1
    done
    touch /tmp/ready
    wait' &
box=$!

until [ -e "$root/tmp/ready" ]; do
    kill -0 "$box" 2>/dev/null || { echo "$0: contain failed" >&2; exit 1; }
    sleep 0.05
done
# Mapped is not yet drawn.
sleep 1
if [ "$mode" = xephyr ]; then
    xwd -silent -name "contain $root" | convert xwd:- "$out"
else
    # The part of the screen the windows are on.
    xwd -silent -root | convert xwd:- -crop 600x320+0+0 +repage "$out"
fi
echo "$0: wrote $out"
xwininfo -root -tree | grep -F "contain $root"
