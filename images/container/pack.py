#!/usr/bin/env python3
"""Packs a root filesystem directory into a `docker load` archive (docker-archive format:
manifest.json, one image config JSON, one layer tar), without a Docker daemon.

    pack.py ROOTFS CONFIG.json TAG OUT.tar

CONFIG.json holds the image's `config` object (Entrypoint, Cmd, Env, Healthcheck, ...); this
script adds architecture, os, created, rootfs and history.

Why not umoci + skopeo: umoci writes an OCI image layout, and skopeo's conversion of an OCI image
to docker-archive goes through the OCI image config, which has no healthcheck field: the
Healthcheck is dropped. docker.io 20.10 cannot `docker load` an OCI layout either. Writing the
docker-archive here keeps every Docker config field and the archive reproducible.

Reproducible: entries sorted, owner root:root (numeric 0:0, no names), one mtime for everything
(SOURCE_DATE_EPOCH, default 2024-01-01), no PAX headers carrying times, no compression.
"""

import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import time

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1704067200"))


def tar_entry(tar, path, arcname):
    st = os.lstat(path)
    info = tarfile.TarInfo(arcname)
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        raise SystemExit(f"pack.py: {path}: only directories, files and symlinks go in an image")


def layer(rootfs):
    """The layer tar of ROOTFS, bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            rel = os.path.relpath(dirpath, rootfs)
            names = sorted(dirnames + filenames)
            for name in names:
                arc = name if rel == "." else f"{rel}/{name}"
                tar_entry(tar, os.path.join(dirpath, name), arc)
    return buf.getvalue()


def member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def main():
    if len(sys.argv) != 5:
        raise SystemExit("usage: pack.py ROOTFS CONFIG.json TAG OUT.tar")
    rootfs, config_path, tag, out = sys.argv[1:]
    with open(config_path) as f:
        config = json.load(f)
    layer_tar = layer(rootfs)
    layer_id = hashlib.sha256(layer_tar).hexdigest()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH))
    image = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created": created, "created_by": "images/container/build.sh"}],
    }
    image_json = json.dumps(image, sort_keys=True, separators=(",", ":")).encode()
    image_id = hashlib.sha256(image_json).hexdigest()
    manifest = [
        {
            "Config": f"{image_id}.json",
            "RepoTags": [tag],
            "Layers": [f"{layer_id}/layer.tar"],
        }
    ]
    repo, _, version = tag.rpartition(":")
    repositories = {repo: {version: layer_id}}
    legacy = {"id": layer_id, "created": created, "os": "linux", "architecture": "amd64"}
    tmp = out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.GNU_FORMAT) as tar:
        # Directory entries first, then files, all sorted.
        info = tarfile.TarInfo(layer_id)
        info.type = tarfile.DIRTYPE
        info.mtime = EPOCH
        info.mode = 0o755
        tar.addfile(info)
        member(tar, f"{layer_id}/VERSION", b"1.0")
        member(tar, f"{layer_id}/json", json.dumps(legacy, sort_keys=True).encode())
        member(tar, f"{layer_id}/layer.tar", layer_tar)
        member(tar, f"{image_id}.json", image_json)
        member(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
        member(tar, "repositories", json.dumps(repositories).encode())
    os.replace(tmp, out)
    print(f"{out}: {tag}, image sha256:{image_id[:12]}, layer {len(layer_tar) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
