#!/usr/bin/env bash
# contain-oci beside crun under containerd's runc shim: `ctr run --rm IMAGE true` with
# `--runc-binary` naming each runtime, timed by hyperfine in alternating rounds, as root. The
# whole cycle an engine pays per container: the shim's create, start, wait and delete, the
# cgroups (cgroupsPath /bench/ID in every v1 hierarchy here), the snapshot.
#
# containerd runs with its root, state and sockets in the work directory, no CRI plugin, in a
# private mount namespace (an empty tmpfs over /run, so that nothing reaches the host's
# /run/containerd; and over the hybrid host's cgroup2 mount, which crun refuses to work
# beside); the image is a busybox OCI image layout written here and imported, never pulled.
# It is stopped (by its PID) at the end. Target: contain-oci no slower than crun (<= 1.0x).
#
# Usage: sudo bench/containerd.sh
# Environment: BIN (a directory holding contain-oci; default: the static release build of
# bench/build.sh, built here), RUNS per round (default 40), ROUNDS (default 6; rounds
# alternate which runtime runs first). The JSON and CSV exports stay in the printed directory.
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-40}
rounds=${ROUNDS:-6}
need "hyperfine containerd crun busybox-static util-linux" hyperfine containerd ctr crun \
    /bin/busybox unshare sha256sum
[ "$(id -u)" = 0 ] || { echo "bench: run as root (containerd is a root daemon)" >&2; exit 1; }

BIN=${BIN:-$(release_dir -p contain-oci)}
make_work containerd
oci=$(install_tool "$BIN/contain-oci")
crun=$(command -v crun)
sock=$work/containerd.sock
ctr=(ctr -a "$sock" -n bench)

cat >"$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$work/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
EOF
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m --propagation private sh -c '
    set -e
    mount -t tmpfs -o size=4m,mode=0755 tmpfs /run
    if grep -q " /sys/fs/cgroup/unified cgroup2 " /proc/self/mounts; then
        mount -t tmpfs -o size=64k tmpfs /sys/fs/cgroup/unified
    fi
    mount --make-rshared /
    exec containerd --config "$1"' sh "$work/config.toml" >"$work/containerd.log" 2>&1 &
daemon=$!
stop() {
    local id
    for id in $("${ctr[@]}" task ls -q 2>/dev/null); do "${ctr[@]}" task rm -f "$id" >/dev/null 2>&1 || true; done
    for id in $("${ctr[@]}" container ls -q 2>/dev/null); do "${ctr[@]}" container rm "$id" >/dev/null 2>&1 || true; done
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    for dir in /sys/fs/cgroup/*/bench; do [ ! -d "$dir" ] || rmdir "$dir" 2>/dev/null || true; done
    rm -rf "$work/root" "$work/state" "$work/image"
}
trap stop EXIT
for _ in $(seq 500); do
    "${ctr[@]}" version >/dev/null 2>&1 && break
    sleep 0.01
done
"${ctr[@]}" version >/dev/null || { echo "bench: containerd did not start: $work/containerd.log" >&2; exit 1; }

# blob FILE: stores FILE under its SHA-256 in the image layout; prints "DIGEST SIZE".
blob() {
    local digest size
    digest=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$work/image/blobs/sha256/$digest"
    echo "$digest $size"
}
mkdir -p "$work/image/blobs/sha256"
busybox_rootfs "$work/rootfs"
tar --numeric-owner --owner=0 --group=0 -C "$work/rootfs" -cf "$work/layer.tar" .
rm -rf "$work/rootfs"
read -r layer layer_size < <(blob "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$layer" >"$work/config.json"
read -r config config_size < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
read -r manifest manifest_size < <(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"localhost/busybox:latest"},"platform":{"architecture":"amd64","os":"linux"}}]}' \
    "$manifest" "$manifest_size" >"$work/image/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/image/oci-layout"
tar -C "$work/image" -cf "$work/busybox-oci.tar" .
"${ctr[@]}" image import "$work/busybox-oci.tar" >/dev/null

# ctr run --rm with RUNTIME as the shim's runc binary, container ID NAME.
run_cmd() {
    echo "${ctr[*]} run --rm --fifo-dir $work/fifo --runc-binary $1 --runc-root $work/runc-$2 localhost/busybox:latest $2 true"
}

echo "== as root, contain-oci $("$oci" --version | cut -d' ' -f2), $(crun --version | head -1), $(containerd --version | cut -d' ' -f3), $(machine)"
report_rounds ctr-run 3 2 "<= 1.0x" :: \
    'ctr run --rm (crun)' "$(run_cmd "$crun" crun)" \
    'ctr run --rm (contain-oci)' "$(run_cmd "$oci" oci)"
echo
echo "exports: $work/ctr-run.ROUND.{json,csv}"
