# shellcheck shell=sh
# Shared by the example scripts (sourced, not run).

# start_xvfb WORK SCREEN: a stand-in for the user's display: an Xvfb of SCREEN (WxHxDEPTH) with a
# cookie and no TCP, in a mount namespace of its own whose /tmp is private (only its abstract
# socket is in the host's network namespace); its auth files are in the directory WORK.
# -displayfd says which number it took, once it accepts clients. Sets $xvfb (its PID, for the
# caller to end) and exports DISPLAY and XAUTHORITY for its clients.
start_xvfb() {
    cookie=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    : >"$1/server-auth"
    xauth -q -f "$1/server-auth" add :0 MIT-MAGIC-COOKIE-1 "$cookie"
    unshare -Urm sh -c 'mount -n --bind "$1" /mnt && mount -n -t tmpfs tmpfs /tmp &&
        mkdir /tmp/work && mount -n --move /mnt /tmp/work &&
        exec Xvfb -displayfd 3 -nolisten tcp -auth /tmp/work/server-auth -screen 0 "$2"' \
        sh "$1" "$2" 3>"$1/number" 2>/dev/null &
    xvfb=$!
    until [ -s "$1/number" ]; do
        kill -0 "$xvfb" 2>/dev/null || { echo "$0: Xvfb did not start" >&2; exit 1; }
        sleep 0.05
    done
    DISPLAY=:$(cat "$1/number")
    XAUTHORITY="$1/client-auth"
    export DISPLAY XAUTHORITY
    : >"$XAUTHORITY"
    xauth -q -f "$XAUTHORITY" add "$DISPLAY" MIT-MAGIC-COOKIE-1 "$cookie"
}
