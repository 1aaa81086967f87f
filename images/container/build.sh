#!/usr/bin/env bash
# Builds roamer's container images without a Docker daemon:
#   OUTDIR/roamer-oci.tar        `docker load` archive tagged roamer:latest (the appliance)
#   OUTDIR/roamer-host-oci.tar   `docker load` archive tagged roamer-host:latest (small host image
#                                 for the `linux` nodes of `roamer lab up --runtime docker`)
#
#   images/container/build.sh BIN OUTDIR      (BIN: a static roamer binary; run as root)
#
# Both are docker-archive files (manifest.json + config + one layer), written by pack.py next to
# this script rather than with umoci + skopeo: skopeo's OCI -> docker-archive conversion drops the
# Healthcheck (OCI image configs have no such field), and docker.io 20.10 cannot load OCI layouts.
# Reproducible: fixed mtimes (SOURCE_DATE_EPOCH), root:root, sorted entries.
#
# Contents: busybox-static (the usual tools), Debian's dash as /bin/sh and iproute2 `ip` and `bridge` with the
# shared libraries ldd names (busybox's `ip` has no -n/-d/-j, no `bridge vlan`); the roamer image
# adds the static roamer as /usr/bin/roamer, /etc/roamer (containerlab binds the startup
# configuration at /etc/roamer/startup-config) and /run/roamer (the control socket); the host
# image adds Debian's ping.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 BIN OUTDIR" >&2
    exit 2
fi
bin=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
max_bytes=$((30 * 1000 * 1000))

[ -x "$bin" ] || { echo "$bin: not an executable" >&2; exit 1; }
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "$bin is not static: $(readelf -d "$bin" | grep NEEDED | tr -s ' ')" >&2
    exit 1
fi
for tool in python3 ldd readelf; do
    command -v "$tool" >/dev/null || { echo "build.sh needs $tool" >&2; exit 1; }
done
busybox=/bin/busybox
"$busybox" --list 2>/dev/null | grep -qx sh \
    || { echo "build.sh needs busybox-static (apt-get install busybox-static)" >&2; exit 1; }
iproute_ip=$(command -v ip) || { echo "build.sh needs iproute2 (apt-get install iproute2)" >&2; exit 1; }
iproute_bridge=$(command -v bridge || true)
ping_bin=$(command -v ping || true)
# /bin/sh is Debian's dash: Debian's busybox is built with FEATURE_SH_STANDALONE, so its sh runs
# its own applets (its ip, its ping) before anything on PATH, even from `sh -c` exec lines.
dash=$(command -v dash) || { echo "build.sh needs dash" >&2; exit 1; }
mkdir -p "$out"

stage=$(mktemp -d /tmp/roamer-image.XXXXXX)
trap 'rm -rf "$stage"' EXIT

# A dynamically linked program and every library ldd names, at the same paths.
add_dynamic() { # ROOTFS PROGRAM DEST
    local root=$1 prog=$2 dest=$3 lib
    install -D -m 0755 "$prog" "$root$dest"
    for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
        chmod 0755 "$root$lib"
    done
}

# The part both images share.
base() { # ROOTFS
    local root=$1 applet
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,root,run,var}
    chmod 0700 "$root/root"
    install -d -m 1777 "$root/tmp"
    ln -s ../run "$root/var/run"
    install -m 0755 "$busybox" "$root/bin/busybox"
    add_dynamic "$root" "$dash" /bin/sh
    add_dynamic "$root" "$iproute_ip" /usr/sbin/ip
    [ -z "$iproute_bridge" ] || add_dynamic "$root" "$iproute_bridge" /usr/sbin/bridge
    # busybox's applets, except where a real program is installed.
    for applet in $("$busybox" --list-full); do
        case "$(basename "$applet")" in sh|ip|bridge|ping|ping6|busybox) continue ;; esac
        [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done
    ln -s /usr/sbin/ip "$root/sbin/ip"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
}

size_check() { # FILE
    local bytes
    bytes=$(stat -c %s "$1")
    awk -v f="$1" -v b="$bytes" 'BEGIN { printf "%s: %d bytes (%.1f MB)\n", f, b, b / 1e6 }'
    if [ "$bytes" -gt "$max_bytes" ]; then
        echo "$1 is larger than $max_bytes bytes" >&2
        exit 1
    fi
}

path_env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# roamer:latest
root="$stage/roamer"
base "$root"
install -D -m 0755 "$bin" "$root/usr/bin/roamer"
install -d -m 0755 "$root/etc/roamer" "$root/run/roamer"
cat > "$stage/roamer.json" <<EOF
{
  "Entrypoint": ["/usr/bin/roamer", "run"],
  "Cmd": [],
  "Env": ["$path_env"],
  "WorkingDir": "/",
  "StopSignal": "SIGTERM",
  "Healthcheck": {
    "Test": ["CMD", "roamer", "exec", "show version"],
    "Interval": 5000000000,
    "Timeout": 3000000000,
    "StartPeriod": 5000000000,
    "Retries": 3
  },
  "Labels": {
    "org.opencontainers.image.title": "roamer",
    "org.opencontainers.image.description": "LISP VM-mobility virtual switch (containerlab node: startup configuration at /etc/roamer/startup-config, eth0 management, ethN = Ethernet1/N)"
  }
}
EOF
python3 "$here/pack.py" "$root" "$stage/roamer.json" roamer:latest "$out/roamer-oci.tar"
size_check "$out/roamer-oci.tar"

# roamer-host:latest: sleeps until SIGTERM (`docker stop` returns at once).
root="$stage/host"
base "$root"
if [ -n "$ping_bin" ]; then
    add_dynamic "$root" "$ping_bin" /usr/bin/ping
else
    ln -s /bin/busybox "$root/usr/bin/ping"
fi
cat > "$stage/host.json" <<EOF
{
  "Cmd": ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep infinity & wait"],
  "Env": ["$path_env"],
  "WorkingDir": "/",
  "StopSignal": "SIGTERM",
  "Labels": {
    "org.opencontainers.image.title": "roamer-host",
    "org.opencontainers.image.description": "busybox, iproute2 and ping: the linux nodes of roamer lab --runtime docker"
  }
}
EOF
python3 "$here/pack.py" "$root" "$stage/host.json" roamer-host:latest "$out/roamer-host-oci.tar"
size_check "$out/roamer-host-oci.tar"
