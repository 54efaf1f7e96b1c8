#!/usr/bin/env python3
"""Writes an OCI image layout (image-spec 1.0) of one layer from a prepared root directory:
DIR/oci-layout, DIR/index.json, DIR/blobs/sha256/{layer, config, manifest}, and with --archive
the same layout as one tar (what `skopeo copy oci-archive:...`, `podman load` read).
Called by scripts/image.sh, which prepares the root; see there.

Reproducible: the layer's entries are sorted, every mtime is --epoch, owners are numeric (root,
except the paths given with --owner), modes are 0755/0644 (0755 for executables, or what
--mode says), gzip has no name and no time. The same root and options give the same digests.

  oci_image.py --root ROOTFS --out DIR --config CONFIG.json --ref NAME [--archive FILE]
               [--owner PATH=UID:GID]... [--mode PATH=OCTAL]... [--epoch SECONDS]

CONFIG.json is the image config's "config" object (User, Entrypoint, ...); this adds
architecture, os, created, rootfs.diff_ids and history.
"""
import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def entries(root):
    """Every path under root, relative, sorted (a directory before what it holds)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            out.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(out)


def layer_tar(root, owners, modes, epoch):
    """The uncompressed layer: a POSIX tar of root's entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in entries(root):
            path = os.path.join(root, rel)
            st = os.lstat(path)
            info = tarfile.TarInfo(rel)
            info.mtime = epoch
            info.uid, info.gid = owners.get(rel, (0, 0))
            info.uname = info.gname = ""
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                info.mode = 0o777
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                info.mode = modes.get(rel, 0o755)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                info.mode = modes.get(rel, 0o755 if st.st_mode & 0o111 else 0o644)
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                sys.exit("oci_image.py: %s is not a file, directory or symlink" % rel)
    return buf.getvalue()


def write_blob(out, data):
    """Stores data under blobs/sha256/; returns its descriptor's digest and size."""
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--ref", required=True, help="org.opencontainers.image.ref.name in index.json")
    p.add_argument("--archive")
    p.add_argument("--owner", action="append", default=[])
    p.add_argument("--mode", action="append", default=[])
    p.add_argument("--epoch", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    a = p.parse_args()

    owners = {}
    for o in a.owner:
        path, ids = o.split("=", 1)
        uid, gid = ids.split(":")
        owners[os.path.normpath(path.lstrip("/"))] = (int(uid), int(gid))
    modes = {}
    for m in a.mode:
        path, octal = m.split("=", 1)
        modes[os.path.normpath(path.lstrip("/"))] = int(octal, 8)
    with open(a.config) as f:
        runtime = json.load(f)

    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(os.path.join(a.out, "blobs", "sha256"))

    tar = layer_tar(a.root, owners, modes, a.epoch)
    zipped = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=zipped, mtime=0, compresslevel=6) as z:
        z.write(tar)
    layer = dict(mediaType=LAYER, **write_blob(a.out, zipped.getvalue()))
    created = datetime.datetime.fromtimestamp(a.epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
        "history": [{"created": created, "created_by": "scripts/image.sh"}],
    }
    config_desc = dict(mediaType=CONFIG, **write_blob(a.out, canonical(config)))
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc,
                "layers": [layer]}
    manifest_desc = dict(mediaType=MANIFEST, **write_blob(a.out, canonical(manifest)))
    manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": a.ref}
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest_desc]}
    with open(os.path.join(a.out, "index.json"), "wb") as f:
        f.write(canonical(index))
    with open(os.path.join(a.out, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))

    if a.archive:
        part = a.archive + ".part"
        with tarfile.open(part, mode="w", format=tarfile.PAX_FORMAT) as t:
            for rel in entries(a.out):
                info = t.gettarinfo(os.path.join(a.out, rel), arcname=rel)
                info.mtime = a.epoch
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = 0o755 if info.isdir() else 0o644
                if info.isfile():
                    with open(os.path.join(a.out, rel), "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
        os.replace(part, a.archive)
    print("%s %s (layer %d bytes, %d uncompressed)" % (
        a.ref, manifest_desc["digest"], layer["size"], len(tar)))


if __name__ == "__main__":
    main()
