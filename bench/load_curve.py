#!/usr/bin/env python3
"""Latency against offered load: Shoal vs the FastAPI + fasttext baseline, open loop.

Trains the intent model bench/run_http.sh uses (examples/intents-v2.txt, softmax, dim 32), serves
it from a `shoal node` (defaults) and from bench/fastapi_server.py (FastAPI + uvicorn --workers 2,
TCP_NODELAY set), in turn, and offers each rising rates with `shoal bench` (open loop: latency from
the time each request was due; 256 connections, a request due while all are busy is shed by the
client). Stops a server's curve once a step answers under 95% of what was due or its p99 passes
--stop-ms. Writes the points as JSON (--json) and prints a table.

usage: bench/load_curve.py [--seconds N] [--stop-ms MS] [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from benchlib import ROOT, Node, free_ports, log, shoal_bench, train_fasttext

RATES = [250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 48000]
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")


def step(port, model, rate, seconds, pid):
    return shoal_bench(port, model, ["--rate", str(rate), "--seconds", str(seconds),
                                     "--connections", "256", "--drop-when-busy",
                                     "--timeout-ms", "5000"], pid=pid)["steps"][0]


def curve(name, port, model, pid, seconds, stop_ms):
    points = []
    step(port, model, 200, 2, pid)  # warm up
    for rate in RATES:
        s = step(port, model, rate, seconds, pid)
        s["server"] = name
        points.append(s)
        log("%s: %d req/s offered: %.0f ok/s, p99 %.2f ms" % (
            name, rate, s["ok"] / seconds, s["ok_latency"]["p99_ms"]))
        if s["ok"] < 0.95 * s["due"] or s["ok_latency"]["p99_ms"] > stop_ms:
            break
    return points


def start_fastapi(tmp, model_path):
    (port,) = free_ports(1)
    env = dict(os.environ, BENCH_MODEL=model_path, BENCH_MODEL_NAME="bench/intents",
               BENCH_MODEL_VERSION="1", BENCH_TCP_NODELAY="1")
    log_file = open(os.path.join(tmp, "fastapi.log"), "ab")
    proc = subprocess.Popen([PYTHON, "-m", "uvicorn", "bench.fastapi_server:app", "--app-dir", ROOT,
                             "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                             "--no-access-log", "--log-level", "warning"],
                            env=env, stdout=log_file, stderr=log_file, start_new_session=True)
    for _ in range(300):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/v2/health/live" % port, timeout=1)
            return proc, port
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise SystemExit("FastAPI did not start: see " + os.path.join(tmp, "fastapi.log"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--stop-ms", type=float, default=200)
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="shoal-curve-")
    fastapi = None
    try:
        model = train_fasttext(tmp, "intents", os.path.join(ROOT, "examples", "intents-v2.txt"),
                               ["-loss", "softmax", "-dim", "32", "-bucket", "20000", "-wordNgrams",
                                "2", "-minn", "2", "-maxn", "4", "-epoch", "10", "-lr", "0.5"])
        node = Node(tmp, "shoal")
        node.push("bench/intents", model)
        points = curve("shoal", node.http, "bench/intents", node.proc.pid, args.seconds,
                       args.stop_ms)
        node.stop()
        fastapi, port = start_fastapi(tmp, model)
        # uvicorn's workers are child processes: the parent's CPU would say nothing
        points += curve("fastapi", port, "bench/intents", None, args.seconds, args.stop_ms)
        print(report(points))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(points, f, indent=1)
    finally:
        if fastapi is not None and fastapi.poll() is None:
            os.killpg(fastapi.pid, 15)
            fastapi.wait(timeout=10)
        Node.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


def report(points):
    lines = ["| server | offered req/s | 200/s | p50 ms | p90 ms | p99 ms | shed by client/s |"
             " server CPU % |", "|---|---|---|---|---|---|---|---|"]
    for p in points:
        secs = p["seconds"]
        lines.append("| %s | %d | %.0f | %.3f | %.3f | %.3f | %.0f | %.0f |" % (
            p["server"], p["rate"], p["ok"] / secs, p["ok_latency"]["p50_ms"],
            p["ok_latency"]["p90_ms"], p["ok_latency"]["p99_ms"], p["client_shed"] / secs,
            p["node_cpu_percent"] if "node_cpu_percent" in p else float("nan")))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
