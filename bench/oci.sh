#!/usr/bin/env bash
# contain-oci beside crun (the reference runtime), timed by hyperfine in alternating rounds:
#
#   1. A bare cycle on a bundle, as root: `create`, `start`, `delete --force` of a busybox
#      container running `true`, with each runtime's own state directory.
#   2. `podman run --rm --network none IMAGE true`, as root and, unprivileged, as BENCH_USER
#      (default contain-test, which the tests create when run as root), with podman's
#      storage, state and configuration in the work directory (a private containers.conf, as
#      the tests use; the image is a busybox tarball imported there, never pulled).
#
# crun refuses every container on a host whose cgroup2 mount lists controllers beside v1
# ones (hybrid mode), so everything runs in a private mount namespace with an empty tmpfs
# over /sys/fs/cgroup/unified (and a PID namespace whose init, bash, reaps the containers'
# processes that create leaves behind); the host's mounts are not changed. Target: contain-oci
# no slower than crun (ratio <= 1.0x).
#
# Usage: sudo bench/oci.sh
# Environment: BIN (a directory holding contain-oci; default: the static release build of
# bench/build.sh, built here), RUNS per round (default 100 for the cycle, a fifth for podman),
# ROUNDS (default 6; rounds alternate which runtime runs first), BENCH_USER.
# The JSON and CSV exports stay in the printed directory.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-100}
rounds=${ROUNDS:-6}
need "hyperfine podman crun conmon busybox-static util-linux" hyperfine podman crun conmon \
    /bin/busybox unshare
[ "$(id -u)" = 0 ] || { echo "bench: run as root (crun needs the mount namespace above)" >&2; exit 1; }

if [ "${OCI_BENCH_INSIDE:-}" != 1 ]; then
    BIN=${BIN:-$(release_dir -p contain-oci)}
    export BIN OCI_BENCH_INSIDE=1
    exec unshare -m -p --fork --mount-proc --propagation private bash -c \
        'mount -t tmpfs none /sys/fs/cgroup/unified && mount --make-rshared / && exec bash "$0"' \
        "$0"
fi

unprivileged_user
make_work oci
oci=$(install_tool "$BIN/contain-oci")
crun=$(command -v crun)

# The bundle of the bare cycle: runc's default config (contain-oci spec) running `true`.
bundle=$work/bundle
busybox_rootfs "$bundle/rootfs"
"$oci" spec -b "$bundle"
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/' "$bundle/config.json"

# cycle.sh RUNTIME STATE: one create, start and delete --force.
cat >"$work/cycle.sh" <<'EOF'
#!/bin/sh
set -e
id=bench$$
"$1" --root "$2" create -b "$3" "$id" </dev/null >/dev/null
"$1" --root "$2" start "$id"
"$1" --root "$2" delete --force "$id"
EOF
chmod 755 "$work/cycle.sh"

echo "== as root, contain-oci $("$oci" --version | cut -d' ' -f2), $(crun --version | head -1), $(machine)"
report_rounds cycle 3 2 "<= 1.0x" :: \
    'crun create/start/delete' "$work/cycle.sh $crun $work/state-crun $bundle" \
    'contain-oci create/start/delete' "$work/cycle.sh $oci $work/state-oci $bundle"

# podman_env DIR WHO: a private podman setup in DIR (see the tests' Podman), the image imported.
podman_env() {
    local dir=$1
    mkdir -p "$dir"/{home,run,tmp,static,volumes}
    chmod 700 "$dir/run"
    cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
runtime_supports_json = ["contain-oci", "crun", "runc"]
static_dir = "$dir/static"
tmp_dir = "$dir/tmp"
volume_path = "$dir/volumes"
[engine.runtimes]
contain-oci = ["$oci"]
crun = ["$crun"]
EOF
    cat >"$dir/podman" <<EOF
#!/bin/sh
export CONTAINERS_CONF=$dir/containers.conf HOME=$dir/home XDG_RUNTIME_DIR=$dir/run
exec podman --root $dir/storage --runroot $dir/runroot --storage-driver vfs "\$@"
EOF
    chmod 755 "$dir/podman"
    busybox_rootfs "$dir/rootfs"
    tar -C "$dir/rootfs" -cf "$dir/busybox.tar" .
    rm -rf "$dir/rootfs"
    [ "$2" = root ] || chown -R "$bench_user:" "$dir"
}

podman_rounds() {
    local name=$1 dir=$2
    shift 2
    local run=(run --rm --network none --security-opt seccomp=unconfined localhost/bb true)
    "$@" "$dir/podman" import "$dir/busybox.tar" localhost/bb >/dev/null
    runs=$(( ${RUNS:-100} / 5 ))
    report_rounds "$name" 3 2 "<= 1.0x" "$@" :: \
        'podman --runtime crun run --rm' "$dir/podman --runtime crun ${run[*]}" \
        'podman --runtime contain-oci run --rm' "$dir/podman --runtime contain-oci ${run[*]}"
    # Rootless podman keeps a pause process holding its user namespace: end it.
    [ ! -e "$dir/tmp/pause.pid" ] || kill -KILL "$(cat "$dir/tmp/pause.pid")" 2>/dev/null || true
}

podman_env "$work/podman-root" root
echo
echo "== as root, $(podman --version)"
podman_rounds podman-root "$work/podman-root"

# hyperfine runs as the user and writes its exports into the work directory.
[ ${#run_as[@]} -eq 0 ] || chown "$bench_user" "$work"
podman_env "$work/podman-user" user
echo
echo "== as $bench_user ($uid)"
podman_rounds podman-user "$work/podman-user" "${run_as[@]}"

echo
echo "exports: $work/{cycle,podman-root,podman-user}.ROUND.{json,csv}"
