#!/usr/bin/env python3
"""Density bench (issue 5): many small models on one node with a model memory budget.

Trains two intent models with the fasttext tool, a small one (~100 KB, the 10,000-model set)
and one of about 1 MB (the cold-load set), and writes distinct variants of each (the last
output-layer weights changed, so every file has its own bytes and loads on its own). Starts one
real `shoal node` on free loopback ports with --model-memory-mb BUDGET, then measures:

  push      `shoal snapshot push-dir` of every model: files/s.
  idle      the node's resident memory (VmRSS) after start-up, before any model is loaded.
  zipf      wrk (2 threads, 32 connections) for DURATION seconds over all small models, model of
            rank r asked for in proportion to 1/r^S (bench/zipf.lua): requests/s, p50/p99,
            errors; then the models loaded, the node's resident memory and what it is over idle,
            against the budget (target: within budget + 10%), memory per loaded model.
  baseline  the same traffic over the 1,000 most popular models only, which all fit in memory
            (after one pass to load them): what the node does with every request warm.
  cold      one request each, one at a time on a kept-alive connection, to COLD 1 MB models that
            were never asked for (each a cold load: read, checked, parsed), then the same
            request again (warm): p50/p90/p99/max of both (target: cold p50 under 5 ms).

Every process is stopped on exit, Ctrl-C or failure. Prints a markdown report (and --json).
usage: bench/density.py [--models N] [--budget-mb MB] [--duration S] [--zipf S] [--cold N]
       (needs build/shoal, wrk and fasttext)
"""
import argparse
import http.client
import json
import os
import random
import shutil
import struct
import subprocess
import tempfile
import time

from benchlib import ROOT, SHOAL, Node, log, pct, rss_bytes, train_fasttext, wrk

ZIPF_LUA = os.path.join(ROOT, "bench", "zipf.lua")


def train(tmp, name, args):
    return train_fasttext(tmp, name, os.path.join(ROOT, "examples", "intents-v1.txt"), args)


def variants(base, directory, prefix, n, seed):
    """Writes n copies of `base` whose last 16 output weights differ: distinct files, same shape."""
    os.makedirs(directory, exist_ok=True)
    data = bytearray(open(base, "rb").read())
    rng = random.Random(seed)
    for i in range(n):
        for k in range(16):
            struct.pack_into("<f", data, len(data) - 4 * (k + 1), rng.uniform(-1, 1))
        with open(os.path.join(directory, "%s%d.bin" % (prefix, i)), "wb") as f:
            f.write(data)
    return len(data)


def mb(b):
    return b / (1 << 20)


def push_dir(zmq, tenant, directory):
    t0 = time.perf_counter()
    r = subprocess.run([SHOAL, "snapshot", "push-dir", tenant, directory, "--node",
                        "127.0.0.1:%d" % zmq, "--jobs", "4", "--json"],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit("push-dir failed: " + r.stderr[-2000:])
    pushed = len(json.loads(r.stdout)["pushed"])
    return pushed, secs


def node_load(zmq):
    r = subprocess.run([SHOAL, "cluster", "status", "--json", "--node", "127.0.0.1:%d" % zmq],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["members"][0]["load"]


def wrk_zipf(http, models, duration, zipf_s):
    return wrk("http://127.0.0.1:%d/" % http, duration, script=ZIPF_LUA,
               env={"MODELS": str(models), "TENANT": "t", "PREFIX": "m", "ZIPF_S": str(zipf_s)})


def infer_once(conn, path):
    body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                   "data": ["where is my parcel"]}]})
    t0 = time.perf_counter()
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    ms = (time.perf_counter() - t0) * 1000
    if resp.status != 200:
        raise SystemExit("%s answered %d: %s" % (path, resp.status, data[:300]))
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=10000)
    ap.add_argument("--budget-mb", type=int, default=256)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--cold", type=int, default=200)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="shoal-density-")
    try:
        log("training the two base models ...")
        small = train(tmp, "small", ["-dim", "16", "-bucket", "1500", "-wordNgrams", "2",
                                     "-epoch", "5"])
        big = train(tmp, "big", ["-dim", "16", "-bucket", "15000", "-minn", "2", "-maxn", "4",
                                 "-epoch", "5"])
        log("writing %d small and %d 1 MB model files ..." % (args.models, args.cold))
        small_bytes = variants(small, os.path.join(tmp, "small"), "m", args.models, 1)
        big_bytes = variants(big, os.path.join(tmp, "big"), "c", args.cold, 2)
        node = Node(tmp, "density", ["--model-memory-mb", str(args.budget_mb)])
        proc, http_port, zmq = node.proc, node.http, node.zmq
        time.sleep(2)
        idle = rss_bytes(proc.pid)
        log("pushing %d models with push-dir ..." % args.models)
        pushed, push_secs = push_dir(zmq, "t", os.path.join(tmp, "small"))
        pushed_big, _ = push_dir(zmq, "cold", os.path.join(tmp, "big"))
        idle_after_push = rss_bytes(proc.pid)
        log("zipf traffic for %d s ..." % args.duration)
        z = wrk_zipf(http_port, args.models, args.duration, args.zipf)
        time.sleep(1.5)  # one gossip round for the loaded count
        load = node_load(zmq)
        rss_after = rss_bytes(proc.pid)
        # Baseline, same run: the same traffic over the 1,000 most popular models only, which
        # fit in the budget (one pass to load them, then the measured one): every request warm.
        log("baseline: zipf traffic over the top 1,000 models, all loaded ...")
        wrk_zipf(http_port, 1000, max(5, args.duration // 2), args.zipf)
        warm_run = wrk_zipf(http_port, 1000, args.duration, args.zipf)
        log("cold loads of %d 1 MB models ..." % args.cold)
        conn = http.client.HTTPConnection("127.0.0.1", http_port)
        cold, warm = [], []
        for i in range(args.cold):
            path = "/v2/models/cold/c%d/infer" % i
            cold.append(infer_once(conn, path))
            warm.append(infer_once(conn, path))
        rss_end = rss_bytes(proc.pid)
        res = {
            "models": args.models, "budget_mb": args.budget_mb, "zipf_s": args.zipf,
            "small_model_file_bytes": small_bytes, "big_model_file_bytes": big_bytes,
            "pushed": pushed, "push_files_per_s": pushed / push_secs,
            "rss_idle_mb": mb(idle), "rss_after_push_mb": mb(idle_after_push),
            "zipf": z,
            "zipf_warm_top1000": warm_run,
            "loaded_after_zipf": load["loaded_models"],
            "free_model_memory_mb": mb(load["free_model_memory"]),
            "rss_after_zipf_mb": mb(rss_after), "rss_end_mb": mb(rss_end),
            "cold_n": args.cold,
            "cold_ms": {"p50": pct(cold, 50), "p90": pct(cold, 90), "p99": pct(cold, 99),
                        "max": max(cold)},
            "warm_ms": {"p50": pct(warm, 50), "p90": pct(warm, 90), "p99": pct(warm, 99),
                        "max": max(warm)},
        }
        over_idle = rss_after - idle_after_push
        used = args.budget_mb * (1 << 20) - load["free_model_memory"]
        res["over_idle_mb"] = mb(over_idle)
        res["within_budget_plus_10pct"] = over_idle <= args.budget_mb * (1 << 20) * 1.1
        res["model_memory_in_use_mb"] = mb(used)
        res["rss_per_loaded_model_kb"] = over_idle / 1024 / max(1, load["loaded_models"])
        res["accounted_per_loaded_model_kb"] = used / 1024 / max(1, load["loaded_models"])
        print(report(res))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        Node.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


def report(r):
    z = r["zipf"]
    lines = [
        "### Density: %d models on one node, model memory budget %d MB" % (r["models"],
                                                                         r["budget_mb"]),
        "",
        "Model files: small %.0f KB (x %d), cold-load set %.2f MB." % (
            r["small_model_file_bytes"] / 1024, r["models"], r["big_model_file_bytes"] / 2**20),
        "",
        "| measure | value |",
        "|---|---|",
        "| push-dir of %d models | %.0f files/s |" % (r["pushed"], r["push_files_per_s"]),
        "| Zipf (s=%.2f) traffic, wrk -t2 -c32 | %.0f req/s, p50 %.3f ms, p90 %.3f ms, "
        "p99 %.3f ms, %d non-2xx, socket errors: %s |" % (
            r["zipf_s"], z["rps"], z["p50_ms"], z["p90_ms"], z["p99_ms"], z["non2xx"],
            z["socket_errors"]),
        "| baseline, same run: Zipf over the top 1,000 models only (all in memory) | %.0f req/s, "
        "p50 %.3f ms, p99 %.3f ms (all-models run: %.2fx its throughput) |" % (
            r["zipf_warm_top1000"]["rps"], r["zipf_warm_top1000"]["p50_ms"],
            r["zipf_warm_top1000"]["p99_ms"], z["rps"] / r["zipf_warm_top1000"]["rps"]),
        "| models loaded after the all-models run | %d |" % r["loaded_after_zipf"],
        "| model memory in use (accounted) | %.1f MB of %d MB |" % (r["model_memory_in_use_mb"],
                                                                  r["budget_mb"]),
        "| resident memory: idle (catalog of %d models) / after Zipf | %.1f MB / %.1f MB |" % (
            r["models"], r["rss_after_push_mb"], r["rss_after_zipf_mb"]),
        "| over idle | %.1f MB (budget + 10%% = %.1f MB: %s) |" % (
            r["over_idle_mb"], r["budget_mb"] * 1.1,
            "met" if r["within_budget_plus_10pct"] else "NOT met"),
        "| per loaded model: resident / accounted | %.0f KB / %.0f KB |" % (
            r["rss_per_loaded_model_kb"], r["accounted_per_loaded_model_kb"]),
        "| cold load of a %.2f MB model (first request), n=%d | p50 %.2f ms, p90 %.2f ms, "
        "p99 %.2f ms, max %.2f ms (target p50 < 5 ms: %s) |" % (
            r["big_model_file_bytes"] / 2**20, r["cold_n"], r["cold_ms"]["p50"],
            r["cold_ms"]["p90"], r["cold_ms"]["p99"], r["cold_ms"]["max"],
            "met" if r["cold_ms"]["p50"] < 5 else "NOT met"),
        "| the same request warm | p50 %.2f ms, p99 %.2f ms |" % (r["warm_ms"]["p50"],
                                                               r["warm_ms"]["p99"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
