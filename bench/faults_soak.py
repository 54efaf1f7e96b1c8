#!/usr/bin/env python3
"""Fault soak (issue 20): 5 nodes in network namespaces under inference load for a long time
(default 30 minutes), with one fault at a time drawn at random: kill -9 and a restart, SIGSTOP
and SIGCONT, a partition into a majority and a minority, 15% packet loss on every link, and
200 ms between two halves. Pushes, promotes and rollbacks go to random nodes all along (a push
on a minority may be refused; what is acknowledged must survive).

It runs the same harness, steps and checks as the fault tests (tests/faults/run.py):
acknowledged operations all present on every node and no version number twice, failed requests
only where no holder was reachable (or the node asked was down), no false death, every node alive
and the catalogs equal at the end. Then it prints a markdown table per fault kind: how many, the
load held during them, requests failed (and of those, failed while a holder was reachable),
detection (kill and pause: until every other node no longer saw it alive) and recovery (until
every node saw it alive again), for bench/README.md's "Faults" section.

usage: bench/faults_soak.py [--minutes 30] [--seed 1] [--load 40]   (root; build/shoal)
"""
import argparse
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "faults"))
from run import execute  # noqa: E402

NODES = 5


def schedule(minutes, rng):
    """A list of steps: one fault at a time, with label moves and pushes between and during."""
    steps, t, end = [], 5.0, minutes * 60.0
    down = []  # (node, from, to): operations go to nodes that are up (a stopped one would hold
    #            the schedule up for the CLI's timeout)
    kinds = ["kill", "pause", "partition", "loss", "delay"]
    while t < end - 60:
        kind = rng.choice(kinds)
        node = rng.randrange(NODES)
        length = rng.uniform(8, 25)
        if kind == "kill":
            steps += [{"at": t, "do": "kill", "node": node, "kind": "kill"},
                      {"at": t + length, "do": "start", "node": node}]
            down.append((node, t - 1, t + length + 2))
        elif kind == "pause":
            steps += [{"at": t, "do": "pause", "node": node, "kind": "pause"},
                      {"at": t + length, "do": "resume", "node": node}]
            down.append((node, t - 1, t + length + 2))
        elif kind == "partition":
            nodes = list(range(NODES))
            rng.shuffle(nodes)
            steps += [{"at": t, "do": "partition", "groups": [sorted(nodes[:3]), sorted(nodes[3:])],
                       "kind": "partition"},
                      {"at": t + length, "do": "heal"}]
        elif kind == "loss":
            steps += [{"at": t, "do": "loss", "p": 0.15, "kind": "loss"},
                      {"at": t + length, "do": "heal"}]
        else:
            nodes = list(range(NODES))
            rng.shuffle(nodes)
            steps += [{"at": t, "do": "delay", "groups": [sorted(nodes[:2]), sorted(nodes[2:])],
                       "ms": 200, "jitter_ms": 50, "kind": "delay"},
                      {"at": t + length, "do": "heal"}]
        # operations during and after the fault
        for k in range(3):
            at = t + rng.uniform(1, length + 10)
            op = rng.choice(["push", "promote", "rollback"])
            up = [n for n in range(NODES) if not any(d == n and a <= at <= b for d, a, b in down)]
            step = {"at": at, "do": op, "node": rng.choice(up),
                    "model": "acme/m%d" % rng.randrange(6), "expect": "any"}
            if op == "promote":
                step["version"] = rng.randint(1, 3)
            steps.append(step)
        t += length + rng.uniform(15, 25)  # time to settle before the next fault
    steps.append({"at": end, "do": "end"})
    steps.sort(key=lambda s: s["at"])
    return steps


def per_kind(run):
    """Figures per fault kind from the run's records and the nodes' logs."""
    rows = {}
    faults = [s for s in run.sc["steps"] if "kind" in s]
    ends = {}
    steps = run.sc["steps"]
    for i, s in enumerate(steps):
        if "kind" in s:
            for later in steps[i + 1:]:
                if later["do"] in ("start", "resume", "heal"):
                    ends[id(s)] = later["at"]
                    break
    name_of = {n.index: n.name for n in run.lab.nodes}
    for s in faults:
        start, end = run.t0 + s["at"], run.t0 + ends.get(id(s), s["at"])
        r = rows.setdefault(s["kind"], {"count": 0, "seconds": 0.0, "requests": 0, "failed": 0,
                                        "unexcused": 0, "detect": [], "recover": []})
        r["count"] += 1
        r["seconds"] += end - start
        during = run.load.between(start, end + 5)
        r["requests"] += len(during)
        r["failed"] += sum(1 for x in during if x[4] != 200)
        if s["kind"] in ("kill", "pause"):
            name = name_of[s["node"]]
            others = [i for i in name_of if i != s["node"]]
            seen = []
            back = []
            for o in others:
                down = [t for t, ob, sub, _, to in run.events
                        if ob == o and sub == name and to != "alive" and start <= t < end + 5]
                up = [t for t, ob, sub, _, to in run.events
                      if ob == o and sub == name and to == "alive" and t >= end]
                if down:
                    seen.append(min(down) - start)
                if up:
                    back.append(min(up) - end)
            if len(seen) == len(others):
                r["detect"].append(max(seen))
            if len(back) == len(others):
                r["recover"].append(max(back))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--load", type=int, default=40, help="requests a second, all nodes together")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sc = {"about": "%g-minute soak, seed %d" % (args.minutes, args.seed), "nodes": NODES,
          "models": 6, "load": args.load, "steps": schedule(args.minutes, rng),
          "checks": ["served_where_reachable", "no_false_death", "catalog_converges",
                     "history_complete", "all_alive_at_end"]}
    run, tmp = execute("soak", sc, keep=True)
    rows = per_kind(run)
    print("\n| fault | times | seconds | requests during (+5 s) | failed | detection, max | "
          "recovery, max |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("kill", "pause", "partition", "loss", "delay"):
        r = rows.get(kind)
        if not r:
            continue
        det = "%.2f s" % max(r["detect"]) if r["detect"] else "-"
        rec = "%.2f s" % max(r["recover"]) if r["recover"] else "-"
        print("| %s | %d | %.0f | %d | %d | %s | %s |" % (kind, r["count"], r["seconds"],
                                                        r["requests"], r["failed"], det, rec))
    f = run.figures
    print("\nin all: %d requests, %d failed, %d of them while a holder was reachable; %d operations "
          "acknowledged, lost: %d; false deaths: %d" % (
              f.get("requests", 0), f.get("failed", 0), f.get("failed_unexcused", 0),
              f.get("ops_acknowledged", 0),
              sum(1 for v in run.violations if "acknowledged" in v), f.get("false_deaths", 0)))
    if run.violations:
        print("VIOLATIONS:\n  - " + "\n  - ".join(run.violations))
        return 1
    os.system("rm -rf " + tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
