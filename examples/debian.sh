#!/bin/sh
# Bootstraps a bootable Debian (minbase, plus an init, procps and cron) into DIR as an
# unprivileged user, with pseudo and Debian's own mmdebstrap, adjusts it for a container, and
# boots it with examples/debian-boot.sh. Files owned by root inside DIR end up owned by the
# caller on the host; files of the other users and groups of the tree (_apt, uid 42) by the
# caller's subordinate IDs from /etc/subuid and /etc/subgid (first subuid + 41).
#
# Usage: examples/debian.sh DIR [SUITE]     (SUITE: bookworm, the default, or a later release)
#
# Environment:
#   PSEUDO  the pseudo binary (default: pseudo from PATH)
#   INIT    the init: sysvinit-core (default), runit-init, or systemd (package systemd-sysv;
#           booting it needs a cgroup: see debian-boot.sh)
#   CACHE   download cache, kept between runs (default: /tmp/debian-cache-$USER); it only
#           grows, delete it to start afresh
#   MIRROR  Debian archive URI (default: the one the host's apt sources use)
#   PACKAGES  more packages to install, comma-separated (e.g. jwm,xterm: examples/gui-desktop.sh)
#   BOOT    "no" to stop after the bootstrap; otherwise debian-boot.sh boots the tree (it
#           takes CONTAIN and INJECT from the environment likewise)
#
# Needs the Debian packages mmdebstrap and uidmap, and subordinate ranges for the caller.
# pseudo -p gives mmdebstrap a PID namespace, so that it can mount a real procfs on DIR/proc
# while the maintainer scripts run; device nodes, which mknod may not create in a user
# namespace, mmdebstrap then binds from the host's /dev by itself.
#
# cron is there as a service to look for: init scripts start it under both inits.
set -eu

usage() {
    echo "usage: $0 DIR [SUITE]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
dir=$1
suite=${2:-bookworm}
pseudo=${PSEUDO:-pseudo}
init=${INIT:-sysvinit-core}
# systemd-sysv makes /sbin/init systemd's.
case $init in systemd) package=systemd-sysv ;; *) package=$init ;; esac
user=$(id -un)
cache=${CACHE:-/tmp/debian-cache-$user}

command -v "$pseudo" >/dev/null || { echo "$0: $pseudo not found (set PSEUDO)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "$0: mmdebstrap not installed" >&2; exit 1; }
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "$0: $dir exists and is not empty" >&2
    exit 1
fi
grep -q "^$user:" /etc/subuid || echo "$0: warning: no subordinate uids for $user" >&2

# The archive the host's own apt uses: apt knows each source's origin from its Release file.
# The URI pattern covers hosts whose package lists were never downloaded.
host_repo() {  # $1: Release label, $2: URI pattern
    apt-get indextargets --format '$(REPO_URI)' "Label: $1" 2>/dev/null | head -n 1 | grep . ||
        apt-get indextargets --format '$(REPO_URI)' 'Target-Of: deb' 2>/dev/null |
        grep -m 1 "$2" || true
}
mirror=${MIRROR:-$(host_repo Debian '/debian/$')}
mirror=${mirror:-http://deb.debian.org/debian/}
security=$(host_repo Debian-Security '/debian-security/$')
security=${security:-$(echo "$mirror" | sed 's,/debian/*$,/debian-security/,')}
echo "I: mirror $mirror, security $security"

# Packages and package lists of earlier runs are copied in before apt runs, and the new ones
# copied out before mmdebstrap empties the apt cache. The hooks run as the namespace's root,
# which is the caller on the host, so the cache stays the caller's own. They expand $CACHE
# and $1 (the chroot) themselves.
export CACHE="$cache"
# Made by container root, which the hooks run as (for real root: the first host ID of root's
# default block, 1879048192 on most hosts).
"$pseudo" mkdir -p "$CACHE/archives" "$CACHE/lists"
copy='-maxdepth 1 -type f ! -name lock -exec cp -t'

start=$(date +%s)
"$pseudo" -p mmdebstrap --mode=root --variant=minbase \
    --include="$package,procps,cron${PACKAGES:+,$PACKAGES}" \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives" "$1/var/lib/apt/lists"' \
    --setup-hook="find \"\$CACHE/archives\" $copy \"\$1/var/cache/apt/archives\" {} +" \
    --setup-hook="find \"\$CACHE/lists\" $copy \"\$1/var/lib/apt/lists\" {} +" \
    --customize-hook="find \"\$1/var/cache/apt/archives\" $copy \"\$CACHE/archives\" {} +" \
    --customize-hook="find \"\$1/var/lib/apt/lists\" $copy \"\$CACHE/lists\" {} +" \
    "$suite" "$dir" \
    "deb $mirror $suite main" \
    "deb $mirror $suite-updates main" \
    "deb $security $suite-security main"
echo "I: bootstrapped $suite into $dir in $(($(date +%s) - start)) s"

# Seen from the host: root's files are the caller's, _apt's are the caller's subuid + 41.
for path in / /etc/passwd /usr/bin/ps /sbin/init /var/cache/apt/archives/partial /var/mail; do
    stat -c "%U(%u):%G(%g) %A $path" "$dir$path"
done

# Adjustments for a container, made inside the tree as its root (in a chroot, so that no path
# leads out of the tree, not even a symlink to /etc/...):
# - The gettys on tty1 to tty6 (and runit's on ttyS0) watch terminals the container does not
#   have. Its terminal is /dev/console, the pty that contain relays to its own stdin and
#   stdout: a getty goes there instead. runit's tty gettys would disable themselves at the
#   first boot (getty-ttyS0 after printing the host's kernel command line from /proc/cmdline):
#   they are disabled beforehand.
# - sysvinit: contain passes SIGPWR on to init, and sysvinit answers it with the inittab's
#   power failure entries. Debian's run /etc/init.d/powerfail, which does not exist. In a
#   container, a power failure is the request to stop, as under LXC: it halts. SIGINT
#   (ctrl-alt-del) still reboots. runit halts on SIGINT by itself, after a 14 s warning.
"$pseudo" chroot "$dir" /bin/sh -s "$init" <<'EOF'
set -eu
case $1 in
sysvinit-core)
    sed -i -e 's/^[1-6]:[0-9]*:respawn:.*getty.* tty[1-6]$/#&/' \
        -e 's|^pf::powerwait:.*|pf::powerwait:/sbin/shutdown -h now|' \
        -e 's/^p[no]::power.*/#&/' /etc/inittab
    echo 'co:2345:respawn:/sbin/agetty -L --noclear console' >>/etc/inittab
    ;;
runit-init)
    mkdir /etc/sv/getty-console
    printf '#!/bin/sh\nexec /sbin/agetty -L --noclear console\n' >/etc/sv/getty-console/run
    chmod 755 /etc/sv/getty-console/run
    ln -s /run/runit/supervise/getty-console /etc/sv/getty-console/supervise
    cd /etc/runit/runsvdir/default
    ln -s /etc/sv/getty-console getty-console
    # A leading dot disables a service; the tty gettys would do this themselves at boot.
    for getty in getty-tty*; do
        if [ -L "$getty" ]; then mv "$getty" ".$getty"; fi
    done
    ;;
systemd)
    # Nothing: systemd's getty generator puts a getty on /dev/console in a container.
    echo "I: systemd needs no adjustment for a container"
    exit
    ;;
*)
    echo "I: nothing to adjust for $1"
    exit
    ;;
esac
echo "I: $1 set up for a container: its getty on /dev/console"
EOF

[ "${BOOT:-}" = no ] || exec "$(dirname "$0")/debian-boot.sh" "$dir"
