#!/usr/bin/env python3
"""Crash consistency of a node's store: kill -9 at random points of many pushes and label moves,
every file-I/O call site of a workload failed once (fail_io.so, LD_PRELOAD), and a disk that
fills up. After each crash the node is started again on the same data directory and must show:

  - every acknowledged push, under the version number it was given, with its note and bytes;
  - every acknowledged label move in the label's history;
  - nothing half-present: every version in the catalog has its bytes on disk, checked against
    its SHA-256, and nothing is left in the store's tmp/ directory;
  - production of every model answering inference.

usage: crash.py kill [--ops N] [--seed S]     N operations (default 1000) with kill -9 at random
                                              moments, restarting each time
       crash.py inject                        each call site of a push/promote/rollback
                                              workload failed once: every write, pwrite, fsync,
                                              fdatasync, rename and ftruncate under the data dir
       crash.py disk                          the data dir on a 512 KiB tmpfs: pushes until the
                                              disk is full, a promote with no space at all, then
                                              space back (same node), then a restart
(root, as every fault test; SHOAL_BIN from the environment; the Python client from
build/clients/python)
"""
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from faultlab import Lab, SHOAL, ZMQ_PORT, LabUnavailable  # noqa: E402
from run import train_models  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(SHOAL), "clients", "python"))
from shoal_client import Client, ShoalError  # noqa: E402

MODELS = ["acme/c0", "acme/c1", "acme/c2"]


class Model:
    """A fastText .bin whose last float (of the output matrix) is rewritten per push, so every
    push stores distinct bytes (a blob of its own) and still loads."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.base = f.read()

    def variant(self, k):
        return self.base[:-4] + struct.pack("<f", 0.001 * (k % 1000) + 0.5 / (k + 1))


class Ledger:
    """What the node answered: acknowledged pushes and moves; attempts without an answer."""

    def __init__(self):
        self.pushes = []   # (model, version, note, sha256)
        self.moves = []    # (model, kind, to)
        self.unknown = 0   # no answer (the node died): may or may not have happened
        self.refused = 0   # a definite refusal (nothing to roll back to, ...)


def attempt(client, ledger, rng, variants, k):
    """One random operation; records its outcome."""
    model = rng.choice(MODELS)
    known = [v for (m, v, _, _) in ledger.pushes if m == model]
    roll = rng.random()
    try:
        if roll < 0.55 or not known:
            data = variants.variant(k)
            note = "op-%d" % k
            r = client.push(model, data, note=note, timeout=3)
            ledger.pushes.append((model, r.version, note, hashlib.sha256(data).hexdigest()))
        elif roll < 0.85:
            r = client.promote(model, rng.choice(known))
            ledger.moves.append((model, "promote", r.to))
        else:
            r = client.rollback(model)
            ledger.moves.append((model, "rollback", r.to))
    except ShoalError as e:
        if e.code in ("TIMEOUT", "UNAVAILABLE", "INTERNAL"):
            ledger.unknown += 1
        else:
            ledger.refused += 1


def store_problems(data_dir, catalog):
    """Versions without their bytes (or with other bytes), and leftovers in tmp/."""
    problems = []
    for m in catalog:
        for s in m["snapshots"]:
            path = os.path.join(data_dir, "snapshots", s["sha256"][:2], s["sha256"])
            try:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                problems.append("%s version %d: no bytes on disk" % (m["model"], s["version"]))
                continue
            if digest != s["sha256"]:
                problems.append("%s version %d: bytes do not match its SHA-256" %
                                (m["model"], s["version"]))
    tmp = os.path.join(data_dir, "tmp")
    left = os.listdir(tmp) if os.path.isdir(tmp) else []
    if left:
        problems.append("tmp/ not cleaned at start: %s" % left[:5])
    return problems


def check(lab, ledger):
    """The invariants after a restart; returns the violations."""
    problems = []
    r = lab.cli(0, "models", "--json", timeout=20)
    if r.returncode != 0:
        return ["models failed after restart: " + r.stderr.strip()]
    catalog = json.loads(r.stdout)["models"]
    by_model = {m["model"]: m for m in catalog}
    for model, version, note, sha in ledger.pushes:
        snaps = {s["version"]: s for s in by_model.get(model, {}).get("snapshots", [])}
        s = snaps.get(version)
        if s is None:
            problems.append("acknowledged push %s (%s version %d) is missing" % (note, model, version))
        elif s["note"] != note or s["sha256"] != sha:
            problems.append("%s version %d is not the acknowledged push %s" % (model, version, note))
    for key in set(ledger.moves):
        acked = ledger.moves.count(key)
        history = by_model.get(key[0], {}).get("labels", {}).get("production", {}).get("history", [])
        kept = sum(1 for h in history if (h["action"], h["to"]) == key[1:])
        if kept < acked:
            problems.append("%d acknowledged %s of %s to %d, %d in the history" %
                            (acked, key[1], key[0], key[2], kept))
    problems += store_problems(lab.nodes[0].data_dir, catalog)
    for m in catalog:
        prod = m.get("labels", {}).get("production")
        if prod:
            status, body = lab.http(0, "POST", "/v2/models/%s/infer" % m["model"], json.dumps(
                {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                             "data": ["where is my parcel"]}]}).encode(), timeout=10)
            if status != 200:
                problems.append("%s production (version %d) does not serve: %d %s" % (
                    m["model"], prod["version"], status, body[:200]))
    return problems


def run_kill(ops, seed):
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="shoal-faults-crash-")
    variants = Model(train_models(tmp)[0])
    ledger = Ledger()
    kills = 0
    with Lab(1, os.path.join(tmp, "lab"), replication=1, secret=False) as lab:
        addr = "%s:%d" % (lab.nodes[0].addr, ZMQ_PORT)
        started = time.time()
        next_kill = time.time() + rng.uniform(0.2, 1.5)
        client = Client(addr, timeout=3)
        k = 0
        while k < ops:
            if time.time() >= next_kill:
                lab.kill(0)
                kills += 1
                lab.start(0)
                client.close()
                client = Client(addr, timeout=3)
                next_kill = time.time() + rng.uniform(0.2, 1.5)
                continue
            k += 1
            # The kill lands in the middle of an operation: a thread fires it at a random moment
            # of some calls (not only between them).
            if rng.random() < 0.1:
                timer = threading.Timer(rng.uniform(0.0, 0.03), lambda: lab.kill(0))
                timer.start()
                attempt(client, ledger, rng, variants, k)
                timer.join()
                kills += 1
                lab.nodes[0].proc.wait()
                lab.start(0)
                client.close()
                client = Client(addr, timeout=3)
            else:
                attempt(client, ledger, rng, variants, k)
        client.close()
        lab.kill(0)
        lab.start(0)
        problems = check(lab, ledger)
        elapsed = time.time() - started
    print("  %d operations in %.0f s, %d kill -9s: %d pushes and %d label moves acknowledged, "
          "%d without an answer, %d refused" % (ops, elapsed, kills, len(ledger.pushes),
                                               len(ledger.moves), ledger.unknown, ledger.refused))
    return problems, tmp


WORKLOAD_OPS = ("write", "pwrite", "fsync", "fdatasync", "rename", "ftruncate")


def workload(lab, variants):
    """push, push, promote 2, rollback, push: returns the ledger."""
    ledger = Ledger()
    client = Client("%s:%d" % (lab.nodes[0].addr, ZMQ_PORT), timeout=5)
    steps = [("push", 1), ("push", 2), ("promote", 2), ("rollback", None), ("push", 3)]
    for kind, arg in steps:
        try:
            if kind == "push":
                data = variants.variant(arg)
                r = client.push("acme/c0", data, note="op-%d" % arg)
                ledger.pushes.append(("acme/c0", r.version, "op-%d" % arg,
                                      hashlib.sha256(data).hexdigest()))
            elif kind == "promote":
                ledger.moves.append(("acme/c0", "promote", client.promote("acme/c0", arg).to))
            else:
                ledger.moves.append(("acme/c0", "rollback", client.rollback("acme/c0").to))
        except ShoalError:
            ledger.refused += 1
    client.close()
    return ledger


def run_inject():
    tmp = tempfile.mkdtemp(prefix="shoal-faults-inject-")
    variants = Model(train_models(tmp)[0])
    lib = os.path.join(tmp, "fail_io.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o", lib,
                    os.path.join(HERE, "fail_io.c"), "-ldl"], check=True)
    problems = []

    def one(tag, env):
        data_dir = os.path.join(tmp, tag)
        with Lab(1, os.path.join(tmp, "lab-" + tag), replication=1, secret=False, start=False,
                 data_dirs=[data_dir]) as lab:
            lab.nodes[0].env = dict(env, LD_PRELOAD=lib, SHOAL_FAIL_DIR=data_dir)
            lab.start(0, wait=False)
            found = []
            try:
                lab.wait_ready(0)
            except RuntimeError:
                # A call at start failed: the node must have said why and stopped.
                if lab.nodes[0].running() or " error " not in lab.log(0):
                    found.append("a failed call at start, and no clear error: " + lab.log_tail(0))
                ledger = Ledger()
                ledger.refused = 1
            else:
                ledger = workload(lab, variants)
                if lab.http(0, "GET", "/v2/health/ready")[0] != 200:
                    found.append("not ready after the failed call")
            lab.kill(0)
            lab.nodes[0].env = {}
            lab.start(0)
            found += check(lab, ledger)
            return ledger, found, lab.log(0)

    counts_file = os.path.join(tmp, "counts")
    one("count", {"SHOAL_FAIL_COUNT": counts_file})
    with open(counts_file) as f:
        lines = [line.split() for line in f]
    calls = {op: max([int(n) for o, n in lines if o == op] or [0]) for op in WORKLOAD_OPS}
    print("  call sites in the workload: %s" % json.dumps(calls))
    runs, failed_ops = 0, 0
    for op, count in calls.items():
        for n in range(1, count + 1):
            for err in ("5", "28"):  # EIO, ENOSPC
                tag = "%s-%d-%s" % (op, n, err)
                marks = os.path.join(tmp, tag + ".marks")
                ledger, found, _ = one(tag, {"SHOAL_FAIL_OP": op, "SHOAL_FAIL_AT": str(n),
                                             "SHOAL_FAIL_ERRNO": err, "SHOAL_FAIL_COUNT": marks})
                runs += 1
                failed_ops += ledger.refused
                with open(marks) as f:
                    if "failed %s %d" % (op, n) not in f.read():
                        found.append("the injected failure did not happen")
                problems += ["%s (errno %s) #%d: %s" % (op, err, n, p) for p in found]
    print("  %d runs, each failing one call once; %d operations refused by them" %
          (runs, failed_ops))
    return problems, tmp


def run_disk():
    """A full disk: the data directory on a small tmpfs, filled up by pushes and then by a
    filler file, so pushes and label moves both meet ENOSPC; then the space comes back."""
    tmp = tempfile.mkdtemp(prefix="shoal-faults-disk-")
    variants = Model(train_models(tmp)[0])
    mount = os.path.join(tmp, "disk")
    os.makedirs(mount)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "shoal-fault-disk", mount],
                   check=True)
    problems = []
    try:
        data_dir = os.path.join(mount, "data")
        with Lab(1, os.path.join(tmp, "lab"), replication=1, secret=False,
                 data_dirs=[data_dir]) as lab:
            addr = "%s:%d" % (lab.nodes[0].addr, ZMQ_PORT)
            ledger = Ledger()
            client = Client(addr, timeout=10)
            refusal = None
            k = 0
            while refusal is None and k < 200:  # 512 KiB hold ~40 of these 12 KB models
                k += 1
                data = variants.variant(k)
                try:
                    r = client.push("acme/d0", data, note="op-%d" % k, timeout=10)
                    ledger.pushes.append(("acme/d0", r.version, "op-%d" % k,
                                          hashlib.sha256(data).hexdigest()))
                except ShoalError as e:
                    refusal = e
            if refusal is None:
                problems.append("200 pushes fit in 512 KiB: the disk never filled")
            elif "No space left" not in refusal.message or refusal.code == "INTERNAL":
                problems.append("a push on a full disk got %s: %s (want a clear no-space error)"
                                % (refusal.code, refusal.message))
            print("  disk full after %d pushes: %s: %s" % (len(ledger.pushes), refusal.code,
                                                          refusal.message))
            # Fill what is left, so the journal cannot grow either.
            fd = os.open(os.path.join(mount, "filler"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                while True:
                    os.write(fd, b"\0" * 512)
            except OSError:
                pass
            finally:
                os.close(fd)
            # Label moves until the journal needs a block it cannot get (a move may still fit
            # in the journal's last page: acknowledged, and it must survive).
            moved = None
            for n in range(400):
                try:
                    to = 2 + n % 2
                    client.promote("acme/d0", to)
                    ledger.moves.append(("acme/d0", "promote", to))
                except ShoalError as e:
                    moved = e
                    break
            if moved is None:
                problems.append("400 label moves on a full disk were all acknowledged")
            elif "No space left" not in moved.message:
                problems.append("a promote on a full disk: %s: %s" % (moved.code, moved.message))
            print("  full disk: %d label moves fitted, then %s: %s" % (
                len(ledger.moves), moved and moved.code, moved and moved.message))
            if lab.http(0, "GET", "/v2/health/ready")[0] != 200:
                problems.append("not ready with a full disk")
            # Serving goes on: production still answers.
            r = lab.cli(0, "models", "--json", timeout=10)
            catalog = json.loads(r.stdout)["models"] if r.returncode == 0 else []
            problems += ["full disk: " + p for p in store_problems(data_dir, catalog)]
            problems += ["full disk: " + p for p in check(lab, ledger)]
            # The space comes back: the same node pushes and promotes again, no restart.
            os.remove(os.path.join(mount, "filler"))
            subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)
            data = variants.variant(1000)
            try:
                r = client.push("acme/d0", data, note="op-after", timeout=10)
                ledger.pushes.append(("acme/d0", r.version, "op-after",
                                      hashlib.sha256(data).hexdigest()))
                client.promote("acme/d0", r.version)
                ledger.moves.append(("acme/d0", "promote", r.version))
            except ShoalError as e:
                problems.append("after the space came back: %s: %s" % (e.code, e.message))
            client.close()
            # The journal survives a restart with every acknowledged change.
            lab.kill(0)
            lab.start(0)
            problems += ["after restart: " + p for p in check(lab, ledger)]
            print("  %d pushes and %d label moves acknowledged, all present after restart"
                  % (len(ledger.pushes), len(ledger.moves)))
    finally:
        subprocess.run(["umount", "-l", mount])
    return problems, tmp


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    args = sys.argv[2:]
    try:
        if mode == "kill":
            ops = int(args[args.index("--ops") + 1]) if "--ops" in args else 1000
            seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
            problems, tmp = run_kill(ops, seed)
        elif mode == "inject":
            problems, tmp = run_inject()
        elif mode == "disk":
            problems, tmp = run_disk()
        else:
            sys.exit(__doc__)
    except LabUnavailable as e:
        print("FAILED: the fault lab cannot run here: %s" % e)
        return 1
    if problems:
        print("FAILED crash %s:\n  - %s\n  (data and logs in %s)" % (mode, "\n  - ".join(problems[:30]),
                                                                  tmp))
        return 1
    subprocess.run(["rm", "-rf", tmp])
    print("PASSED crash %s" % mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
