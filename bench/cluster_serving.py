#!/usr/bin/env python3
"""Cluster serving bench (issue 4): label moves, a holder's death under load, routed throughput.

Starts real `shoal node` processes on free loopback ports (a cluster secret, default timings),
trains two small intent models with the fasttext tool, and measures:

  rollback  5 nodes: 20 promotes and 20 rollbacks (alternating, each through a random node);
            for each, the time from issuing `shoal snapshot promote|rollback` until every node's
            HTTP inference answers with the new version. Median and max of each kind.
  failover  3 nodes, replication_factor 2, 6 models: wrk (2 connections) through one node,
            rotating over all 6 models, 10 s before, 10 s with a kill -9 of a node holding
            acme/m0 at the start, 10 s after; errors, requests/s and p99 of each, and the time
            until every model has 2 live holders again.
  routed    3 nodes: the same wrk run (2 threads, 32 connections, 10 s) against a node holding
            the model (served locally) and against one that does not (every request routed to a
            holder), same run, with the ratio.

Every process is stopped on exit, Ctrl-C or failure. Prints a markdown report.
usage: bench/cluster_serving.py [--only rollback|failover|routed]...  (needs build/shoal, wrk)
"""
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOAL = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))
INFER_LUA = os.path.join(ROOT, "bench", "infer.lua")



CLUSTERS = []  # every cluster started, stopped in main()'s finally whatever happens


class Cluster:
    def __init__(self, tmp, names, extra=()):
        self.tmp, self.nodes, self.procs = tmp, {}, {}
        CLUSTERS.append(self)
        os.makedirs(tmp, exist_ok=True)
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write("bench-secret-" + str(random.random()) + "\n")
        for name in names:
            http, zmq, cluster = free_ports(3)
            self.nodes[name] = {"http": http, "zmq": zmq, "cluster": cluster}
        seeds = ",".join("127.0.0.1:%d" % self.nodes[n]["cluster"] for n in names[:2])
        for name in names:
            self.start(name, seeds, secret, extra)

    def start(self, name, seeds, secret, extra):
        p = self.nodes[name]
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        self.procs[name] = subprocess.Popen(
            [SHOAL, "node", "--name", name, "--data-dir", os.path.join(self.tmp, name),
             "--http-port", str(p["http"]), "--zmq-port", str(p["zmq"]), "--grpc-port", "0",
             "--cluster-port", str(p["cluster"]), "--seeds", seeds,
             "--cluster-secret-file", secret, *extra], stdout=log, stderr=log)
        for _ in range(200):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % p["http"], timeout=1)
                return
            except Exception:
                time.sleep(0.05)
        raise SystemExit("node %s did not start; see %s.log" % (name, name))

    def cli(self, name, *args, timeout=60):
        r = subprocess.run([SHOAL, *args, "--node", "127.0.0.1:%d" % self.nodes[name]["zmq"]],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise SystemExit("shoal %s failed: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()

    def wait_members(self, count):
        for _ in range(200):
            out = json.loads(self.cli(next(iter(self.nodes)), "cluster", "status", "--json"))
            if sum(m["status"] == "alive" for m in out["members"]) == count:
                return
            time.sleep(0.05)
        raise SystemExit("the cluster did not form")


def infer_version(port, model):
    body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                   "data": ["where is my parcel"]}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v2/models/%s/infer" % (port, model), body)
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return json.load(r)["model_version"]
    except Exception:
        return None


def train(tmp, name, dim):
    out = os.path.join(tmp, name)
    subprocess.run(["fasttext", "supervised", "-input", os.path.join(ROOT, "examples", "intents-v1.txt"),
                    "-output", out, "-epoch", "5", "-dim", str(dim), "-verbose", "0"], check=True)
    return out + ".bin"


def wrk(port, model, seconds, threads=1, conns=2, models=None):
    env = dict(os.environ, MODELS=",".join(models or []))
    r = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency",
                        "-s", INFER_LUA, "http://127.0.0.1:%d/v2/models/%s/infer" % (port, model)],
                       capture_output=True, text=True, env=env)
    out = r.stdout
    def grab(prefix):
        for line in out.splitlines():
            if line.strip().startswith(prefix):
                return line.split()
        return None
    rps = float(grab("Requests/sec:")[1])
    p99 = grab("99%")[1]
    p50 = grab("50%")[1]
    non2xx = grab("Non-2xx")
    sock = grab("Socket errors:")
    errors = int(non2xx[-1]) if non2xx else 0
    if sock:
        errors += sum(int(x.strip(",")) for x in sock[2::2])
    total = int(grab("requests")[0]) if grab("requests") else 0
    for line in out.splitlines():
        if "requests in" in line:
            total = int(line.split()[0])
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors, "requests": total}


def bench_rollback(tmp, v1, v2):
    c = Cluster(os.path.join(tmp, "rb"), ["n1", "n2", "n3", "n4", "n5"])
    c.wait_members(5)
    c.cli("n1", "snapshot", "push", "acme/bot", v1)
    c.cli("n1", "snapshot", "push", "acme/bot", v2)
    times, cli_times = [], []
    want = "1"
    for i in range(40):
        node = random.choice(list(c.nodes))
        start = time.monotonic()
        if i % 2 == 0:
            c.cli(node, "snapshot", "promote", "acme/bot", "2")
            want = "2"
        else:
            c.cli(node, "snapshot", "rollback", "acme/bot")
            want = "1"
        cli_times.append((time.monotonic() - start) * 1000)
        pending = set(c.nodes)
        while pending:
            pending = {n for n in pending if infer_version(c.nodes[n]["http"], "acme/bot") != want}
            if time.monotonic() - start > 10:
                raise SystemExit("label move %d not served everywhere in 10 s" % i)
        times.append((time.monotonic() - start) * 1000)
    c.stop()  # (and main() stops it on any failure)
    return times, cli_times


def bench_failover(tmp, models):
    c = Cluster(os.path.join(tmp, "fo"), ["n1", "n2", "n3"])
    c.wait_members(3)
    for i, path in enumerate(models):
        c.cli("n1", "snapshot", "push", "acme/m%d" % i, path)
    time.sleep(1)
    listing = json.loads(c.cli("n1", "snapshot", "list", "acme/m0", "--json"))
    holders = set(listing["snapshots"][0]["holders"])
    front = next((n for n in ["n2", "n3", "n1"] if n not in holders), "n3")
    victim = sorted(h for h in holders if h != front)[0]
    port = c.nodes[front]["http"]
    names = ["acme/m%d" % i for i in range(len(models))]
    before = wrk(port, "acme/m0", 10, models=names)
    killed_at = time.monotonic()
    c.kill(victim)
    during = wrk(port, "acme/m0", 10, models=names)
    # R live holders again for every model.
    restored_ms = None
    alive = [n for n in c.nodes if n != victim]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ok = True
        for i in range(len(models)):
            l = json.loads(c.cli(front, "snapshot", "list", "acme/m%d" % i, "--json"))
            live = [h for h in l["snapshots"][0]["holders"] if h in alive]
            ok = ok and len(live) >= 2
        if ok:
            restored_ms = (time.monotonic() - killed_at) * 1000
            break
        time.sleep(0.2)
    after = wrk(port, "acme/m0", 10, models=names)
    c.stop()  # (and main() stops it on any failure)
    return before, during, after, restored_ms, front, victim


def bench_routed(tmp, model):
    c = Cluster(os.path.join(tmp, "rt"), ["n1", "n2", "n3"])
    c.wait_members(3)
    c.cli("n1", "snapshot", "push", "acme/bot", model)
    time.sleep(1)
    holders = set(json.loads(c.cli("n1", "snapshot", "list", "acme/bot", "--json"))["snapshots"][0]["holders"])
    local = sorted(holders)[0]
    remote = next((n for n in c.nodes if n not in holders), None)
    if remote is None:
        raise SystemExit("every node holds the model; nothing to route")
    a = wrk(c.nodes[local]["http"], "acme/bot", 10, threads=2, conns=32)
    b = wrk(c.nodes[remote]["http"], "acme/bot", 10, threads=2, conns=32)
    c.stop()  # (and main() stops it on any failure)
    return a, b, local, remote


def main():
    only = set(a for a in sys.argv[2::2]) if len(sys.argv) > 1 and sys.argv[1] == "--only" else None
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    for tool in (SHOAL, shutil.which("wrk"), shutil.which("fasttext")):
        if not tool or not os.path.exists(tool):
            raise SystemExit("missing %s (build first; scripts/deps.sh bench)" % tool)
    tmp = tempfile.mkdtemp(prefix="shoal-cluster-bench.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        v1, v2 = train(tmp, "v1", 10), train(tmp, "v2", 12)
        print("# Cluster serving bench (%s, nproc %d)\n" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count()))
        if not only or "rollback" in only:
            times, cli = bench_rollback(tmp, v1, v2)
            print("## Label moves, 5 nodes: 20 promotes and 20 rollbacks, alternating, each through a random node\n")
            print("| | median ms | max ms |\n|---|---:|---:|")
            for name, sel in (("promote", slice(0, None, 2)), ("rollback", slice(1, None, 2))):
                print("| %s: CLI answered (target warmed on its holders, move committed) | %.0f | %.0f |" %
                      (name, statistics.median(cli[sel]), max(cli[sel])))
                print("| %s: every node serves the new version (HTTP, polled) | %.0f | %.0f |" %
                      (name, statistics.median(times[sel]), max(times[sel])))
            print()
        if not only or "failover" in only:
            models = [train(tmp, "m%d" % i, 4 + i) for i in range(6)]
            before, during, after, restored, front, victim = bench_failover(tmp, models)
            print("## kill -9 of a holder under load, 3 nodes, R = 2 (load through %s, %s killed)\n" % (front, victim))
            print("| phase (10 s each, wrk 1 thread, 2 connections) | requests | errors | req/s | p50 | p99 |\n|---|---:|---:|---:|---:|---:|")
            for name, r in (("before", before), ("during (kill at its start)", during), ("after", after)):
                print("| %s | %d | %d | %.0f | %s | %s |" % (name, r["requests"], r["errors"], r["rps"], r["p50"], r["p99"]))
            print("\n2 live copies of all 6 models again %s after the kill.\n" %
                  ("%.1f s" % (restored / 1000) if restored else "NOT within 60 s"))
        if not only or "routed" in only:
            a, b, local, remote = bench_routed(tmp, v1)
            print("## Routed throughput, 3 nodes (wrk -t2 -c32 10 s)\n")
            print("| served by | req/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|")
            print("| %s, holds the model (local) | %.0f | %s | %s | %d |" % (local, a["rps"], a["p50"], a["p99"], a["errors"]))
            print("| %s, holds no copy (every request routed) | %.0f | %s | %s | %d |" % (remote, b["rps"], b["p50"], b["p99"], b["errors"]))
            print("\nrouted/local: %.2fx\n" % (b["rps"] / a["rps"]))
    finally:
        for c in CLUSTERS:
            c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
