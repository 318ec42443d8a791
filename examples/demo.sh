#!/bin/sh
# Demo of the three tools, in three acts:
# 1. pseudo unpacks a few host files into a fresh tree and gives them the owners 0, 1 and 1000
#    inside, without privilege; ls -ln then shows which host IDs those owners really are.
# 2. examples/classic.sh: pseudo copies the host's bash into a tree, contain runs it as PID 1.
# 3. examples/debian.sh: Debian bookworm bootstrapped with pseudo and mmdebstrap, booted with
#    contain, entered with inject, halted. It needs mmdebstrap and the host's Debian mirror;
#    without them it is skipped, saying why. DEBIAN=no skips it too.
#
# Usage: examples/demo.sh
#
# Environment:
#   PSEUDO, CONTAIN, INJECT  the binaries (default: pseudo, contain and inject from PATH, as
#                            `make install` puts them there; for the debug build of this
#                            checkout: PSEUDO=target/debug/pseudo CONTAIN=... INJECT=...)
#
# As an ordinary user, container root is you and container IDs 1, 2, ... are your subordinate
# IDs from /etc/subuid and /etc/subgid (Debian's adduser grants 65536 of them to new users).
# As root, container IDs are root's own subordinate IDs, or else a block of 65536 host IDs
# that no account has (container ID N is host ID 1879048192 + N on most hosts).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
pseudo=${PSEUDO:-pseudo}
export PSEUDO="$pseudo" CONTAIN="${CONTAIN:-contain}" INJECT="${INJECT:-inject}"
for tool in "$PSEUDO" "$CONTAIN" "$INJECT"; do
    command -v "$tool" >/dev/null || {
        echo "demo: $tool is missing: run 'make && make install' first" >&2
        exit 1
    }
done
echo "The tools: $(command -v "$PSEUDO"), $(command -v "$CONTAIN"), $(command -v "$INJECT")"

echo "== 1. pseudo: owners inside and on the host"

echo "\$ pseudo cat /proc/self/uid_map    # container ID, host ID, count"
"$pseudo" cat /proc/self/uid_map

tree=$(mktemp -d /tmp/pseudo-demo.XXXXXX)
# Files of subordinate IDs are not the caller's to delete: container root removes them.
trap '"$pseudo" rm -rf "$tree"' EXIT
# The tree belongs to container root: the caller, or for real root the first ID of its block.
root_uid=$("$pseudo" awk '$1 == 0 { print $2 }' /proc/self/uid_map)
root_gid=$("$pseudo" awk '$1 == 0 { print $2 }' /proc/self/gid_map)
chown "$root_uid:$root_gid" "$tree"

echo
echo "\$ tar -c -C /etc passwd group debian_version | pseudo sh -c 'tar -x -C TREE && chown ...'"
tar -c -C /etc passwd group debian_version | "$pseudo" sh -c '
    tar -x -C "$1" &&
    chown 0:0 "$1/passwd" &&
    chown 1:1 "$1/group" &&
    chown 1000:1000 "$1/debian_version"' sh "$tree" || {
    echo "demo: pseudo could not give the files their owners; an ordinary user needs" >&2
    echo "      subordinate IDs, e.g. as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $(id -un)" >&2
    exit 1
}

echo
echo "\$ pseudo ls -ln TREE                 # owners as the container sees them"
"$pseudo" ls -ln "$tree"

echo
echo "\$ ls -ln TREE                        # the same files on the host"
ls -ln "$tree"

echo
echo "== 2. contain: the host's bash as PID 1 of a container (examples/classic.sh)"
"$here/classic.sh" "$tree/classic"

echo
echo "== 3. A Debian system: bootstrap, boot, inject, halt (examples/debian.sh)"
if [ "${DEBIAN:-}" = no ]; then
    echo "skipped: DEBIAN=no"
elif ! command -v mmdebstrap >/dev/null; then
    echo "skipped: needs the mmdebstrap package"
elif ! timeout 20 apt-get indextargets >/dev/null 2>&1; then
    echo "skipped: apt cannot read the host's Debian sources"
else
    "$here/debian.sh" "$tree/debian" || {
        echo "demo: the Debian act failed (see its messages above)" >&2
        exit 1
    }
fi
