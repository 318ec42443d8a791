#!/bin/sh
# The classic demonstration of a rootless container: copy a piece of the host's own system into
# DIR with pseudo, so that the copies keep their owners inside, and run bash there with contain.
# All of it as an ordinary user. Files that belong to root inside DIR belong to the caller on
# the host; /var/mail (group mail, gid 8) belongs to the caller's first subordinate gid + 7.
#
# Usage: examples/classic.sh DIR
#
# Environment:
#   PSEUDO, CONTAIN  the binaries (default: pseudo and contain from PATH)
#   PROGRAMS         the host programs to copy, with the libraries they load
#                    (default: bash ls stat id cat ps hostname)
#
# Only what bash and the few programs need is copied (a few MB, under a second), not all of
# /usr: each program, the shared libraries ldd names for it, the dynamic loader, and on a
# merged-/usr system such as Debian 12 the /bin, /lib, /lib64 and /sbin symlinks into usr.
set -eu

usage() {
    echo "usage: $0 DIR" >&2
    exit 2
}
[ $# -eq 1 ] || usage
dir=$1
pseudo=${PSEUDO:-pseudo}
contain=${CONTAIN:-contain}
programs=${PROGRAMS:-bash ls stat id cat ps hostname}

for tool in "$pseudo" "$contain"; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    echo "$0: $dir exists and is not empty" >&2
    exit 1
fi
for program in $programs; do
    command -v "$program" >/dev/null || { echo "$0: no $program on this host" >&2; exit 1; }
done
# Made by container root, so that it owns the directory (for real root, container root is
# the first host ID of root's default block, not root).
"$pseudo" mkdir -p "$dir"

# The host paths to copy, relative to /, each with the directories above it, so that these get
# their modes and owners too. Paths are taken with their directories resolved
# (/lib/x86_64-linux-gnu/libc.so.6 is usr/lib/x86_64-linux-gnu/libc.so.6 on a merged-/usr
# system), and a library that is a symlink comes with the file it points to.
with_parents() {
    while [ "$1" != / ]; do
        echo "${1#/}"
        set -- "$(dirname "$1")"
    done
}
host_paths() {
    for program in $programs; do
        path=$(command -v "$program")
        echo "$path"
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux... (0x...)"
        ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
    done | sort -u | while read -r path; do
        with_parents "$(readlink -f "$(dirname "$path")")/$(basename "$path")"
        with_parents "$(readlink -f "$path")"
    done
    # On a merged-/usr system, /bin, /lib, ... are symlinks into usr: the paths inside the
    # programs (#!/bin/sh, the loader /lib64/ld-linux-x86-64.so.2) need them.
    for link in bin sbin lib lib32 lib64 libx32; do
        if [ -L "/$link" ]; then echo "$link"; fi
    done
    # Names for ls and ps; /var/mail shows a group other than root's.
    echo etc/passwd
    echo etc/group
    echo etc/ld.so.cache
    echo var
    echo var/mail
}
# Only what the caller can read: tar would stop at the first unreadable file.
list=$(host_paths | sort -u | while read -r path; do
    if [ -r "/$path" ] || [ -L "/$path" ]; then echo "$path"; fi
done)

echo "\$ tar -c -C / --no-recursion ... | pseudo tar -x -C $dir"
start=$(date +%s%N)
echo "$list" | tar -c -C / --no-recursion -T - | "$pseudo" tar -x -C "$dir"
echo "$(echo "$list" | wc -l) files, directories and symlinks, $(du -sh "$dir" | cut -f 1)," \
    "copied in $((($(date +%s%N) - start) / 1000000)) ms"

echo
echo "\$ contain $dir /bin/bash -c ...          # owners as the container sees them"
"$contain" "$dir" /bin/bash -c '
    echo "bash $BASH_VERSION is PID $$, uid $(id -u), on $(hostname)"
    ps -e -o pid,user,comm
    stat -c "%u:%g %A %n" /usr/bin/bash /etc/passwd /var/mail'

echo
echo "\$ stat -c ... $dir/...                  # the same files on the host"
for path in /usr/bin/bash /etc/passwd /var/mail; do
    stat -c "%u:%g %A %n" "$dir$path"
done
