#!/usr/bin/env python3
"""The container image (scripts/image.sh) from the bundle of the binary under test, without any
container runtime:

  - the layout is what the OCI image-spec asks: oci-layout, index.json -> manifest -> config and
    layers, each blob under its sha256 with the size its descriptor gives, the spec's media
    types, the config's diff_ids the sha256 of each uncompressed layer; a second build gives the
    same digests; skopeo reads it (oci: and oci-archive:) as an independent check;
  - the config: a non-root user that /etc/passwd names, the entrypoint `shoal node`, the volume
    /var/lib/shoal, a health check running `shoal health`, ports 7420-7423, the version label;
  - its root filesystem (umoci unpack, the other independent reader) runs: the entrypoint in a
    chroot of it, as the image's user, in a network namespace of its own (as a container has,
    so the default ports), with /proc mounted; the health check's own command, run in the same
    root as the same user, passes; a fastText model pushed with the build's CLI from outside
    the root answers inference over HTTP; the node maps the C library of /opt/shoal/lib, not
    the host's; the volume holds the catalog and the snapshot, owned by the image's user;
    SIGTERM stops it cleanly.

Needs root (chroot, mount, ip netns), umoci and skopeo (scripts/deps.sh test). SHOAL_BIN,
FASTTEXT_BIN and SHOAL_SOURCE_DIR from the environment (ctest sets them).
"""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

SHOAL = os.environ.get("SHOAL_BIN", "")
FASTTEXT = os.environ.get("FASTTEXT_BIN", "/usr/bin/fasttext")
SOURCE = os.environ.get("SHOAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
VERSION = ""
with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
    for line in f:
        if line.startswith("project(shoal VERSION "):
            VERSION = line.split()[2]

REF = "shoal:" + VERSION  # index.json's org.opencontainers.image.ref.name (podman load's name)

MEDIA = {
    "index": "application/vnd.oci.image.index.v1+json",
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}


def run(args, timeout=600, check=True, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                    r.stderr))
    return r


def blob(layout, desc):
    """The bytes a descriptor names, checked against its digest and size."""
    algo, hexdigest = desc["digest"].split(":", 1)
    assert algo == "sha256", desc
    with open(os.path.join(layout, "blobs", "sha256", hexdigest), "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == hexdigest, "blob %s: wrong digest" % hexdigest
    assert len(data) == desc["size"], "blob %s: %d bytes, descriptor says %d" % (
        hexdigest, len(data), desc["size"])
    return data


def read_layout(layout):
    """Checks index -> manifest -> config, layers; returns (manifest digest, config, layers)."""
    with open(os.path.join(layout, "oci-layout")) as f:
        assert json.load(f) == {"imageLayoutVersion": "1.0.0"}
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    assert index["schemaVersion"] == 2 and index.get("mediaType") == MEDIA["index"], index
    assert len(index["manifests"]) == 1, index
    mdesc = index["manifests"][0]
    assert mdesc["mediaType"] == MEDIA["manifest"], mdesc
    assert mdesc["annotations"]["org.opencontainers.image.ref.name"] == REF, mdesc
    manifest = json.loads(blob(layout, mdesc))
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MEDIA["manifest"]
    assert manifest["config"]["mediaType"] == MEDIA["config"], manifest
    config = json.loads(blob(layout, manifest["config"]))
    assert config["architecture"] == "amd64" and config["os"] == "linux", config
    assert config["rootfs"]["type"] == "layers", config["rootfs"]
    assert len(manifest["layers"]) == len(config["rootfs"]["diff_ids"]) >= 1, manifest
    layers = []
    for desc, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
        assert desc["mediaType"] == MEDIA["layer"], desc
        data = blob(layout, desc)
        assert "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == diff_id, (
            "diff_id of %s is not the sha256 of the uncompressed layer" % desc["digest"])
        layers.append(data)
    return mdesc["digest"], config, layers


def train_model(directory):
    src = os.path.join(SOURCE, "examples", "intents-v1.txt")
    out = os.path.join(directory, "bot")
    run([FASTTEXT, "supervised", "-input", src, "-output", out, "-thread", "1", "-seed", "1",
         "-verbose", "0", "-epoch", "25", "-lr", "0.5", "-dim", "16", "-bucket", "20000",
         "-wordNgrams", "2"])
    return out + ".bin"


class image_test(unittest.TestCase):
    def setUp(self):
        self.assertEqual(os.geteuid(), 0, "needs root: chroot, mount /proc, ip netns")
        self.assertTrue(SHOAL and os.access(SHOAL, os.X_OK), "SHOAL_BIN: the binary under test")
        for tool in ("umoci", "skopeo", "ip", "chroot"):
            self.assertIsNotNone(shutil.which(tool), tool + " (scripts/deps.sh test installs it)")
        self.work = tempfile.mkdtemp(prefix="shoal-image-test-")
        self.addCleanup(shutil.rmtree, self.work, True)

    def test_builds_a_valid_reproducible_image_whose_root_serves_a_model_as_a_non_root_user(self):
        started = time.time()
        run([os.path.join(SOURCE, "scripts", "bundle.sh"), "--binary", SHOAL, "--out", self.work])
        bundle = os.path.join(self.work, "shoal-%s-linux-x86_64.tar.gz" % VERSION)
        for out in ("one", "two"):
            run([os.path.join(SOURCE, "scripts", "image.sh"), "--bundle", bundle, "--out",
                 os.path.join(self.work, out)])
        layout = os.path.join(self.work, "one", "shoal-%s-oci" % VERSION)
        archive = layout + ".tar"

        # The layout, by the spec, and the same again from a second build.
        digest, config, layers = read_layout(layout)
        again, _, _ = read_layout(os.path.join(self.work, "two", "shoal-%s-oci" % VERSION))
        self.assertEqual(digest, again, "two builds of the same bundle differ")
        with open(archive, "rb") as a, open(os.path.join(self.work, "two", os.path.basename(
                archive)), "rb") as b:
            self.assertEqual(hashlib.sha256(a.read()).digest(), hashlib.sha256(b.read()).digest())
        for ref in ("oci:%s:%s" % (layout, REF), "oci-archive:%s:%s" % (archive, REF)):
            seen = json.loads(run(["skopeo", "inspect", ref]).stdout)
            self.assertEqual(seen["Digest"], digest, ref)
            self.assertEqual(seen["Labels"]["org.opencontainers.image.version"], VERSION)

        # The config.
        c = config["config"]
        uid, gid = (int(x) for x in c["User"].split(":"))
        self.assertNotEqual(uid, 0, "the image runs as root")
        self.assertEqual(c["Entrypoint"][:2], ["/opt/shoal/bin/shoal", "node"])
        self.assertEqual(c["Volumes"], {"/var/lib/shoal": {}})
        self.assertEqual(set(c["ExposedPorts"]), {"742%d/tcp" % i for i in range(4)})
        health = c["Healthcheck"]["Test"]
        self.assertEqual(health[:3], ["CMD", "/opt/shoal/bin/shoal", "health"], health)
        self.assertGreater(c["Healthcheck"]["Interval"], 0)
        self.assertEqual(c["Labels"]["org.opencontainers.image.version"], VERSION)

        # The root filesystem, as umoci unpacks it (the runtime spec it writes agrees).
        unpacked = os.path.join(self.work, "unpacked")
        run(["umoci", "unpack", "--image", "%s:%s" % (layout, REF), unpacked])
        root = os.path.join(unpacked, "rootfs")
        with open(os.path.join(unpacked, "config.json")) as f:
            spec = json.load(f)
        self.assertEqual(spec["process"]["user"]["uid"], uid)
        self.assertEqual(spec["process"]["args"], c["Entrypoint"] + c.get("Cmd", []))
        with open(os.path.join(root, "etc", "passwd")) as f:
            users = {l.split(":")[0]: l.split(":") for l in f.read().splitlines()}
        self.assertEqual(int(users["shoal"][2]), uid, users)
        self.assertFalse(os.path.exists(os.path.join(root, "bin", "sh")), "a shell in the image")
        volume = os.path.join(root, "var", "lib", "shoal")
        self.assertEqual((os.stat(volume).st_uid, os.stat(volume).st_gid), (uid, gid))

        # Run it: its own network namespace (the default ports, as in a container), /proc.
        netns = "shoal-image-%d" % os.getpid()
        run(["ip", "netns", "add", netns])
        self.addCleanup(run, ["ip", "netns", "del", netns], check=False)
        run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"])
        os.makedirs(os.path.join(root, "proc"), exist_ok=True)
        run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")])
        self.addCleanup(run, ["umount", "--lazy", os.path.join(root, "proc")], check=False)
        env = ["env", "-i"] + c.get("Env", [])

        def in_image(args):  # as the image's user, in its root and network
            return ["ip", "netns", "exec", netns] + env + [
                shutil.which("chroot"), "--userspec=%d:%d" % (uid, gid), root] + args

        def outside(args):  # this build's tools, in the node's network
            return ["ip", "netns", "exec", netns] + args

        log_path = os.path.join(self.work, "node.log")
        log = open(log_path, "w")
        self.addCleanup(log.close)
        node = subprocess.Popen(in_image(c["Entrypoint"] + c.get("Cmd", [])),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def stop():
            if node.poll() is None:
                node.kill()
                node.wait(15)
        self.addCleanup(stop)

        check = None
        for _ in range(150):
            check = run(in_image(health[1:]), check=False, timeout=30)
            if check.returncode == 0 or node.poll() is not None:
                break
            time.sleep(0.2)
        with open(log_path) as f:
            self.assertEqual(check.returncode, 0, check.stderr + f.read())

        with open("/proc/%d/status" % node.pid) as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f.read().splitlines()}
        self.assertEqual(int(ids["Uid"][0]), uid, "the node's user")
        with open("/proc/%d/maps" % node.pid) as f:
            libcs = {l.split()[-1] for l in f if l.rstrip().endswith("/libc.so.6")}
        self.assertEqual(libcs, {os.path.join(root, "opt/shoal/lib/libc.so.6")}, libcs)

        model = train_model(self.work)
        pushed = run(outside([SHOAL, "snapshot", "push", "acme/bot", model, "--node",
                              "127.0.0.1:7421"]), check=False)
        self.assertEqual(pushed.returncode, 0, pushed.stdout + pushed.stderr)
        body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                       "data": ["where is my parcel"]}]})
        ask = ("import sys, urllib.request as u; r = u.urlopen(u.Request("
               "'http://127.0.0.1:7422/v2/models/acme/bot/infer', data=sys.argv[1].encode(), "
               "headers={'Content-Type': 'application/json'}), timeout=10); "
               "print(r.status); print(r.read().decode())")
        answer = run(outside([sys.executable, "-c", ask, body]), check=False)
        self.assertEqual(answer.returncode, 0, answer.stderr)
        status, text = answer.stdout.split("\n", 1)
        self.assertEqual(status, "200", answer.stdout)
        reply = json.loads(text)
        self.assertEqual(reply["model_name"], "acme/bot")
        self.assertTrue(reply["outputs"][0]["data"][0], reply)

        # The volume: the catalog and the snapshot, all the image user's.
        names = []
        for dirpath, dirnames, filenames in os.walk(volume):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                names.append(os.path.relpath(path, volume))
                self.assertEqual(os.lstat(path).st_uid, uid, path)
        self.assertIn("catalog.journal", names)
        self.assertTrue(any(n.startswith("snapshots/") and len(n) > 20 for n in names), names)

        node.send_signal(15)
        self.assertEqual(node.wait(30), 0)
        with open(log_path) as f:
            self.assertIn("node stopped", f.read())
        print("image test: %.1f s, image %d bytes compressed" % (
            time.time() - started, sum(len(l) for l in layers)), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
