#!/usr/bin/env python3
"""Cluster scaling bench (issue 16): does a cluster add capacity?

Starts real `shoal node` processes on free loopback ports (cluster secret, replication_factor 2),
pushes 100 small models, and measures in one run:

  scaling   one node, then a 3-node and a 4-node cluster on the same machine, closed loop: one
            wrk per node, all at once, 32 connections in all spread over the nodes, each request
            for one of the 100 models, uniform or Zipf (s = 1) popularity. Total req/s, merged
            p50/p99, errors, and the ratio to one node. Clusters run twice: with traffic-following
            copies (the default; 8 s of warm-up traffic first) and without (every request that
            reaches a node without a copy is forwarded on the data plane).
  routed    3 nodes, one model, traffic-following off: wrk against a holder (local) and against
            the node without a copy (every request forwarded), same run; routed/local.
  kill      3 nodes, traffic-following off, open loop through the node without a copy
            (`shoal bench`, 1 s steps): kill -9 of a holder at the start of the second step,
            restart it, 20 times. Requests over 2 s, non-2xx, and the p99 of the kill second.

On the 2-core development machine every node, wrk and the generator share the same cores; with
more cores, NODE_CPUS="0-1 2-3 4-5 6-7" and WRK_CPUS="8-15" pin each node and the load
generators (taskset), and the scaling figures become per-node capacity.

usage: bench/cluster_scaling.py [--only scaling|routed|kill]... [--seconds S] [--kills N]
                               [--cluster-http-threads N]
(needs build/shoal, wrk, the fasttext tool)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import free_ports
from cluster_serving import CLUSTERS, Cluster, train, wrk as wrk_one

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOAL = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))
LUA = os.path.join(ROOT, "bench", "cluster_scaling.lua")
NODE_CPUS = os.environ.get("NODE_CPUS", "").split()
WRK_CPUS = os.environ.get("WRK_CPUS", "")
MODELS = 100
CONNECTIONS = 32


def pinned(cmd, cpus):
    return ["taskset", "-c", cpus] + cmd if cpus else cmd


class PinnedCluster(Cluster):
    """A Cluster whose node i runs on NODE_CPUS[i] (taskset, as many HTTP threads as CPUs) when
    NODE_CPUS is set; else exactly a Cluster."""

    def start(self, name, seeds, secret, extra):
        super().start(name, seeds, secret, extra)
        if NODE_CPUS:
            cpus = NODE_CPUS[sorted(self.nodes).index(name) % len(NODE_CPUS)]
            # Every thread of the node (HTTP, actors, OpenBLAS) onto its CPUs.
            subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(self.procs[name].pid)],
                           check=True, stdout=subprocess.DEVNULL)


def push_models(cluster, paths):
    first = next(iter(cluster.nodes))
    for i, path in enumerate(paths):
        cluster.cli(first, "snapshot", "push", "acme/m%d" % i, path)


def train_models(tmp, count):
    """`count` distinct small intent models (different seeds: different bytes, as real bots)."""
    out = []
    for i in range(count):
        path = os.path.join(tmp, "bot%d" % i)
        subprocess.run(["fasttext", "supervised", "-input",
                        os.path.join(ROOT, "examples", "intents-v1.txt"), "-output", path,
                        "-epoch", "5", "-dim", "16", "-seed", str(i + 1), "-thread", "1",
                        "-verbose", "0"], check=True)
        out.append(path + ".bin")
    return out


def wait_placed(cluster, count, copies):
    """Waits until every model has `copies` holders (placement settled)."""
    first = next(iter(cluster.nodes))
    deadline = time.time() + 60
    while time.time() < deadline:
        done = 0
        for i in range(count):
            j = json.loads(cluster.cli(first, "snapshot", "list", "acme/m%d" % i, "--json"))
            done += len(j["snapshots"][0]["holders"]) >= copies
        if done == count:
            return
        time.sleep(0.5)
    raise SystemExit("placement did not settle")


def wrk_all(ports, seconds, zipf_s):
    """One wrk per port at once, CONNECTIONS spread over them; merged totals and percentiles."""
    env = dict(os.environ, MODELS=str(MODELS), TENANT="acme", PREFIX="m", ZIPF_S=str(zipf_s),
               SHOAL_BENCH_DIR=os.path.join(ROOT, "bench"))
    procs = []
    for i, port in enumerate(ports):
        conns = CONNECTIONS // len(ports) + (1 if i < CONNECTIONS % len(ports) else 0)
        cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--timeout", "2s", "-s", LUA,
               "http://127.0.0.1:%d/" % port]
        procs.append(subprocess.Popen(pinned(cmd, WRK_CPUS), stdout=subprocess.PIPE, text=True,
                                      env=dict(env, SEED=str(i + 1))))
    rps, errors, points = 0.0, 0, []
    for p in procs:
        out, _ = p.communicate()
        for line in out.splitlines():
            s = line.split()
            if line.startswith("Requests/sec:"):
                rps += float(s[1])
            elif "Non-2xx" in line:
                errors += int(s[-1])
            elif line.startswith("  Socket errors:"):
                errors += sum(int(x.strip(",")) for x in s[3::2])
            elif line.startswith("LATENCY_US"):
                n = int(s[1])
                points += [(float(v), n / 999.0) for v in s[2:]]
    points.sort()
    total = sum(w for _, w in points)

    def q(p):
        acc = 0.0
        for v, w in points:
            acc += w
            if acc >= p * total:
                return v / 1000.0
        return points[-1][0] / 1000.0 if points else 0.0
    return {"rps": rps, "p50": q(0.50), "p99": q(0.99), "errors": errors}


def node_counts(cluster):
    """Requests each node answered itself, forwarded, served for peers; extra copies."""
    out = {}
    for name, p in cluster.nodes.items():
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p["http"]).read().decode()
        vals = {}
        for line in text.splitlines():
            for k in ("served_local_total", "forwarded_total", "served_for_peers_total",
                      "shoal_traffic_copies ", "shoal_forward_retries_total"):
                if line.startswith("shoal_requests_" + k) or line.startswith(k):
                    vals[k.strip()] = float(line.split()[-1])
            if line.startswith("shoal_refusals_total{") and float(line.split()[-1]) > 0:
                reason = line.split('"')[1]
                vals["refused_" + reason] = float(line.split()[-1])
            if line.startswith("shoal_inference_errors_total{"):
                vals["errors"] = vals.get("errors", 0) + float(line.split()[-1])
        out[name] = vals
    return out


def bench_scaling(tmp, models, seconds, cluster_threads):
    rows = []
    setups = [(1, True)] + [(n, follow) for n in (3, 4) for follow in (False, True)]
    for n, follow in setups:
        names = ["n%d" % (i + 1) for i in range(n)]
        extra = ["--replication-factor", "2", "--model-memory-mb", "512"]
        if not follow:
            extra += ["--follow-traffic-rps", "0"]
        if n > 1 and cluster_threads:
            extra += ["--http-threads", str(cluster_threads)]
        c = PinnedCluster(os.path.join(tmp, "scale-%d-%s" % (n, follow)), names, extra)
        c.wait_members(n)
        push_models(c, models)
        wait_placed(c, MODELS, min(2, n))
        ports = [c.nodes[x]["http"] for x in names]
        if n > 1 and follow:
            wrk_all(ports, 8, 0)  # warm-up: copies follow the traffic
        for zipf_s, dist in ((0, "uniform"), (1.0, "zipf s=1")):
            wrk_all(ports, 2, zipf_s)  # loads every model where it is served
            r = wrk_all(ports, seconds, zipf_s)
            r.update(nodes=n, follow=follow, dist=dist)
            rows.append(r)
            print("  %d node(s), follow %s, %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d" %
                  (n, follow, dist, r["rps"], r["p50"], r["p99"], r["errors"]), file=sys.stderr)
        if n > 1:
            counts = node_counts(c)
            print("  per node: %s" % json.dumps(counts), file=sys.stderr)
        c.stop()
    return rows


def bench_routed(tmp, model, seconds):
    names = ["n1", "n2", "n3"]
    c = Cluster(os.path.join(tmp, "routed"), names, ["--follow-traffic-rps", "0"])
    c.wait_members(3)
    c.cli("n1", "snapshot", "push", "acme/bot", model)
    deadline = time.time() + 30
    while time.time() < deadline:
        holders = json.loads(c.cli("n1", "snapshot", "list", "acme/bot", "--json"))["snapshots"][0]["holders"]
        if len(holders) == 2:
            break
        time.sleep(0.2)
    local = holders[0]
    remote = [x for x in names if x not in holders][0]
    out = {}
    for who in (local, remote, local, remote):  # alternating, each twice; the better of the two
        r = wrk_one(c.nodes[who]["http"], "acme/bot", seconds, threads=2, conns=32)
        if who not in out or r["rps"] > out[who]["rps"]:
            out[who] = r
    c.stop()
    return out[local], out[remote], local, remote


def failed(step):
    """Requests of a `shoal bench` step that got no 2xx within the timeout (2 s here)."""
    return (step["refused"] + step["unavailable"] + step["other_status"] + step["errors"] +
            step["not_sent"] + step["client_shed"])


def bench_kill(tmp, model, kills, rate):
    names = ["n1", "n2", "n3"]
    c = Cluster(os.path.join(tmp, "kill"), names, ["--follow-traffic-rps", "0"])
    c.wait_members(3)
    c.cli("n1", "snapshot", "push", "acme/bot", model)
    results = []
    for k in range(kills):
        deadline = time.time() + 60
        while time.time() < deadline:
            j = json.loads(c.cli("n1" if "n1" in c.procs and c.procs["n1"].poll() is None else "n2",
                                 "snapshot", "list", "acme/bot", "--json"))
            holders = j["snapshots"][0]["holders"]
            alive = [x for x in names if c.procs[x].poll() is None]
            if len(holders) == 2 and all(h in alive for h in holders) and len(alive) == 3:
                break
            time.sleep(0.2)
        front = [x for x in names if x not in holders][0]
        victim = holders[k % 2]
        gen = subprocess.Popen(
            [SHOAL, "bench", "--http", "127.0.0.1:%d" % c.nodes[front]["http"], "--model",
             "acme/bot", "--rates", "%d,%d,%d" % (rate, rate, rate), "--seconds", "1,1,1",
             "--timeout-ms", "2000", "--connections", "64", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1.0)
        c.kill(victim)
        out, _ = gen.communicate()
        report = json.loads(out)
        steps = report["steps"]
        results.append({"front": front, "victim": victim, "steps": steps})
        s = steps[1]
        print("  kill %d: %s killed, load through %s: kill second ok %d, failed %d, p99 %.2f ms, "
              "max %.2f ms" % (k + 1, victim, front, s["ok"], sum(failed(x) for x in steps),
                               s["ok_latency"]["p99_ms"], s["ok_latency"]["max_ms"]),
              file=sys.stderr)
        seeds = ",".join("127.0.0.1:%d" % c.nodes[x]["cluster"] for x in names if x != victim)
        c.start(victim, seeds, os.path.join(c.tmp, "secret"), ["--follow-traffic-rps", "0"])
        c.wait_members(3)
    c.stop()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", choices=["scaling", "routed", "kill"])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--kill-rate", type=int, default=2000)
    ap.add_argument("--cluster-http-threads", type=int, default=0,
                    help="HTTP threads of each node of the clusters (default: the node's default, "
                         "one per core); the single node keeps its default")
    a = ap.parse_args()
    only = a.only or ["scaling", "routed", "kill"]
    tmp = tempfile.mkdtemp(prefix="shoal-scaling-")
    try:
        model = train(tmp, "m", 16)
        if "scaling" in only:
            rows = bench_scaling(tmp, train_models(tmp, MODELS), a.seconds,
                                 a.cluster_http_threads)
            print("## Cluster scaling: one node vs 3 and 4 nodes on the same machine\n")
            print("wrk closed loop, %d connections in all spread over the nodes, %d models, "
                  "replication_factor 2, %d s per row; HTTP threads per cluster node: %s.\n" %
                  (CONNECTIONS, MODELS, a.seconds, a.cluster_http_threads or "default"))
            print("| nodes | traffic copies | popularity | req/s | p50 ms | p99 ms | errors | vs one node |")
            print("|---:|---|---|---:|---:|---:|---:|---:|")
            base = {r["dist"]: r["rps"] for r in rows if r["nodes"] == 1}
            for r in rows:
                print("| %d | %s | %s | %.0f | %.2f | %.2f | %d | %.2fx |" %
                      (r["nodes"], "-" if r["nodes"] == 1 else ("on" if r["follow"] else "off"),
                       r["dist"], r["rps"], r["p50"], r["p99"], r["errors"],
                       r["rps"] / base[r["dist"]]))
            print()
        if "routed" in only:
            lo, re_, local, remote = bench_routed(tmp, model, a.seconds)
            print("## Routed vs local, 3 nodes, traffic copies off (wrk -t2 -c32, %d s)\n" % a.seconds)
            print("| served by | req/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|")
            print("| %s, holds the model (local) | %.0f | %s | %s | %d |" % (local, lo["rps"], lo["p50"], lo["p99"], lo["errors"]))
            print("| %s, holds no copy (every request forwarded) | %.0f | %s | %s | %d |" % (remote, re_["rps"], re_["p50"], re_["p99"], re_["errors"]))
            print("\nrouted/local: %.2fx\n" % (re_["rps"] / lo["rps"]))
        if "kill" in only:
            res = bench_kill(tmp, model, a.kills, a.kill_rate)
            errors, p99s, ok, slowest = 0, [], 0, 0.0
            for r in res:
                for s in r["steps"]:
                    errors += failed(s)
                    ok += s["ok"]
                    slowest = max(slowest, s["ok_latency"]["max_ms"])
                p99s.append(r["steps"][1]["ok_latency"]["p99_ms"])
            print("## kill -9 of a holder under load, %d times (3 nodes, open loop %d req/s "
                  "through the node without a copy)\n" % (len(res), a.kill_rate))
            print("| kills | answered | non-2xx or over 2 s | kill-second p99 ms: median | max | "
                  "slowest answer ms |")
            print("|---:|---:|---:|---:|---:|---:|")
            p99s.sort()
            print("| %d | %d | %d | %.2f | %.2f | %.2f |\n" % (len(res), ok, errors,
                                                          p99s[len(p99s) // 2], p99s[-1], slowest))
    finally:
        for c in CLUSTERS:
            c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
