#!/usr/bin/env python3
"""Bulk push bench (issue 17): `shoal snapshot push-dir` of many small models, files/s against
--jobs.

Trains one small intent model with the fasttext tool (~113 KB: dim 16, 1,500 buckets, word
bigrams, the demo's intents) and writes --models distinct variants of it (the last output-layer
weights changed, so every file has its own bytes and SHA-256). For each --jobs value a fresh
one-node `shoal node` (its own data directory, so every push writes and fsyncs its file and
journal) takes the whole directory through push-dir; the rate is files acknowledged per second
of the push-dir run. Every push is acknowledged only once its snapshot file and its catalog
record are durable (group commit: one journal fdatasync for the pushes that arrive together).

Afterwards each node's `shoal models --json` must show every model (nothing acknowledged is
missing).

With --baseline BIN (an earlier build's `shoal`), the same runs with that binary as node and
CLI, in the same run, for the ratio.

Target: >= 2,000 pushes/s on 2 cores, and more jobs never slower than one.

usage: bench/bulk_push.py [--models N] [--jobs 1,4,16,64] [--baseline BIN] [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

from benchlib import ROOT, SHOAL, Node, log, train_fasttext
from density import variants


def push_dir(zmq, tenant, directory, jobs, binary):
    t0 = time.perf_counter()
    r = subprocess.run([binary, "snapshot", "push-dir", tenant, directory, "--node",
                        "127.0.0.1:%d" % zmq, "--jobs", str(jobs), "--json"],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit("push-dir failed: " + r.stderr[-2000:])
    return len(json.loads(r.stdout)["pushed"]), secs


def listed(zmq, tenant):
    """How many of the node's models belong to `tenant`."""
    r = subprocess.run([SHOAL, "models", "--json", "--timeout", "60", "--node",
                        "127.0.0.1:%d" % zmq], capture_output=True, text=True, check=True)
    return sum(1 for m in json.loads(r.stdout)["models"] if m["model"].startswith(tenant + "/"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=10000)
    ap.add_argument("--jobs", default="1,4,16,64")
    ap.add_argument("--baseline", help="an earlier build's shoal binary, run the same way")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    tmp = tempfile.mkdtemp(prefix="shoal-bulk-push-")
    try:
        log("training the small model ...")
        small = train_fasttext(tmp, "small", os.path.join(ROOT, "examples", "intents-v1.txt"),
                               ["-dim", "16", "-bucket", "1500", "-wordNgrams", "2",
                                "-epoch", "5"])
        log("writing %d model files ..." % args.models)
        size = variants(small, os.path.join(tmp, "models"), "m", args.models, 1)
        def run(binary, tag):
            rows = []
            for j in jobs:
                node = Node(tmp, "push-%s-j%d" % (tag, j), binary=binary)
                try:
                    log("%s: push-dir of %d files with --jobs %d ..." % (tag, args.models, j))
                    pushed, secs = push_dir(node.zmq, "t", os.path.join(tmp, "models"), j,
                                            binary)
                    count = listed(node.zmq, "t")
                    rows.append({"jobs": j, "pushed": pushed, "seconds": secs,
                                 "files_per_s": pushed / secs, "listed": count})
                finally:
                    node.stop()
            return rows

        rows = run(SHOAL, "this build")
        before = run(args.baseline, "baseline") if args.baseline else None
        out = {"models": args.models, "file_bytes": size, "cores": os.cpu_count(), "rows": rows,
               "baseline": before}
        lines = ["### Bulk push: push-dir of %d models of %d KB, one node, %d cores"
                 % (args.models, size // 1000, os.cpu_count()), "",
                 "| --jobs | files/s | seconds | listed after | x --jobs %d |" % jobs[0] +
                 (" baseline files/s | x baseline |" if before else ""),
                 "|---:|---:|---:|---:|---:|" + ("---:|---:|" if before else "")]
        for i, r in enumerate(rows):
            line = "| %d | %.0f | %.1f | %d | %.2fx |" % (
                r["jobs"], r["files_per_s"], r["seconds"], r["listed"],
                r["files_per_s"] / rows[0]["files_per_s"])
            if before:
                line += " %.0f | %.2fx |" % (before[i]["files_per_s"],
                                             r["files_per_s"] / before[i]["files_per_s"])
            lines.append(line)
        best = max(r["files_per_s"] for r in rows)
        lines += ["", "- best %.0f files/s (target >= 2,000: %s)" % (
            best, "met" if best >= 2000 else "not met")]
        lines += ["- every acknowledged push listed afterwards: %s" % (
            "yes" if all(r["listed"] == r["pushed"] == args.models
                         for r in rows + (before or [])) else "NO")]
        print("\n".join(lines))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        Node.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
