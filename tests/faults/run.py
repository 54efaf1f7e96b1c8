#!/usr/bin/env python3
"""Runs one fault scenario of scenarios.json against real nodes in network namespaces and checks
what must hold; exits 1 with every violation listed, or 0 with the figures.

usage: run.py SCENARIO [--keep]     (root; SHOAL_BIN, FASTTEXT_BIN from the environment)

A scenario is data: nodes, models, a load, a schedule of steps (faults, node kills, pushes and
label moves with what each must answer) and the names of the checks. The steps and checks are
code here, shared by every scenario:

  served_where_reachable  every failed request was sent to a node that was down, or at a moment
                          when no node holding the model was reachable from it
  no_false_death          no node declared dead a member that was running and reachable from it
                          (over the suspicion window before the verdict)
  kill_detected           a killed node was no longer alive on every other node within the step's
                          detect_within_ms
  catalog_converges       after the end every node shows the same catalog (versions, hashes,
                          notes, labels and their whole histories)
  history_complete        every acknowledged push is there, on every node, under the number it
                          was given, no number twice; every acknowledged label move is in the
                          label's history on every node
  all_alive_at_end        every node sees every running node alive, within settle_s (default 20)
  near_holders_preferred  requests to a node that does not hold the model, where a holder is on
                          its side of a slow link, are not sent across it
Prints the run's figures (JSON: requests, failures, packets the faults touched, times) for
bench/README.md's "Faults" section.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlab import Lab, Load, LabUnavailable  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FASTTEXT = os.environ.get("FASTTEXT_BIN", "fasttext")
SUSPICION_WINDOW_S = 4.5  # probe + indirect probe + suspicion_timeout_ms at the defaults


def train_models(tmp):
    """Three small distinct fastText models (versions 1..3 of every model get one each)."""
    paths = []
    for k, dim in enumerate((8, 10, 12)):
        out = os.path.join(tmp, "v%d" % (k + 1))
        subprocess.run([FASTTEXT, "supervised", "-input",
                        os.path.join(ROOT, "examples", "intents-v1.txt"), "-output", out,
                        "-epoch", "3", "-dim", str(dim), "-verbose", "0", "-thread", "1"],
                       check=True)
        paths.append(out + ".bin")
    return paths


class Run:
    def __init__(self, lab, scenario, files):
        self.lab, self.sc, self.files = lab, scenario, files
        self.models = ["acme/m%d" % k for k in range(scenario["models"])]
        self.ops = []        # acknowledged and refused operations, as dicts
        self.faults = []     # {"cut": set of (from, to) pairs, "start": t, "end": t or None}
        self.down = {}       # node -> [(start, end or None)] while its process was not running
        self.kills = []      # (node, time)
        self.violations = []
        self.figures = {}
        self.holders = {}    # model -> set of node indices holding its versions (at the start)
        self.version_holders = {}  # model -> version -> set of node indices (at the start)
        self.seq = 0
        self.flappers = []
        self.load = None

    # ---- setup -----------------------------------------------------------------------------
    def push(self, node, model, file, expect="ok", message=None):
        self.seq += 1
        note = "op-%d" % self.seq
        r = self.lab.cli(node, "snapshot", "push", model, file, "--note", note, "--json",
                         timeout=20)
        op = {"kind": "push", "node": node, "model": model, "note": note, "t": time.time(),
              "ok": r.returncode == 0, "out": r.stdout.strip(), "err": r.stderr.strip()}
        if op["ok"]:
            op["version"] = json.loads(r.stdout)["version"]
        self.ops.append(op)
        self.expect(op, expect, message)
        return op

    def move(self, kind, node, model, version=None, expect="ok", message=None):
        args = ["snapshot", kind, model] + ([str(version)] if version is not None else [])
        r = self.lab.cli(node, *args, timeout=20)  # prints "MODEL LABEL: FROM -> TO"
        op = {"kind": kind, "node": node, "model": model, "t": time.time(),
              "ok": r.returncode == 0, "out": r.stdout.strip(), "err": r.stderr.strip()}
        if op["ok"]:
            m = re.search(r": (\S+) -> (\d+)", r.stdout)
            op["to"] = int(m.group(2))
        self.ops.append(op)
        self.expect(op, expect, message)
        return op

    def expect(self, op, expect, message):
        if expect == "any":  # either answer is right (a soak's random operations)
            return
        what = "%s %s on n%d" % (op["kind"], op["model"], op["node"])
        if expect == "ok" and not op["ok"]:
            self.violations.append("%s failed: %s" % (what, op["err"]))
        elif expect == "refused":
            if op["ok"]:
                self.violations.append("%s was accepted (%s); it must be refused" % (what, op["out"]))
            elif message and message not in op["err"]:
                self.violations.append("%s refused with %r, not with %r" % (what, op["err"], message))

    def setup(self):
        for m in self.models:
            for f in self.files:
                self.push(0, m, f)
        # The pushing node keeps a copy until the placement holders have theirs, then drops it:
        # wait for exactly replication_factor copies, so that where each version lives holds
        # still for the run (the checks judge failures by it).
        deadline = time.monotonic() + 60
        want = self.lab.replication
        while time.monotonic() < deadline:
            held = {m: self.lab.holders(0, m) for m in self.models}
            if all(len(h) == want for v in held.values() for h in v.values()):
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("versions did not settle on %d copies: %s" % (want, held))
        self.holders = {m: set(i for h in v.values() for i in h) for m, v in held.items()}
        self.version_holders = {m: {ver: set(h) for ver, h in v.items()} for m, v in held.items()}
        print("  holders: " + ", ".join("%s %s" % (m, sorted(h)) for m, h in
                                        sorted(self.holders.items())), flush=True)

    # ---- the fault timeline ----------------------------------------------------------------
    def add_fault(self, pairs, kind):
        self.faults.append({"pairs": set(pairs), "kind": kind, "start": time.time(), "end": None})

    def end_faults(self):
        now = time.time()
        for f in self.faults:
            if f["end"] is None:
                f["end"] = now

    def cut_between(self, a, b, t0, t1):
        """True when a fault cut a->b or b->a at some moment of [t0, t1]."""
        for f in self.faults:
            if f["start"] <= t1 and (f["end"] is None or f["end"] >= t0):
                if (a, b) in f["pairs"] or (b, a) in f["pairs"]:
                    return True
        return False

    def was_down(self, node, t0, t1):
        for start, end in self.down.get(node, []):
            if start <= t1 and (end is None or end >= t0):
                return True
        return False

    # ---- checks ----------------------------------------------------------------------------
    def member_events(self):
        """(time, observer index, subject name, from, to) of every status change in the logs."""
        out = []
        pat = re.compile(r"^(\S+Z) \w+\s+member (\S+) \(.*?\) (\w+) -> (\w+)")
        for n in self.lab.nodes:
            for line in self.lab.log(n.index).splitlines():
                m = pat.match(line)
                if m:
                    t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                        tzinfo=timezone.utc).timestamp()
                    out.append((t, n.index, m.group(2), m.group(3), m.group(4)))
        return out

    def check_served_where_reachable(self):
        failed = [r for r in self.load.records if r[4] != 200]
        excused = 0
        bad = []
        for started, ended, node, model, status, _, why in failed:
            t0 = started - 0.5
            if self.was_down(node, t0, ended):
                excused += 1
                continue
            # The node names the version it could not serve ("... acme/m3 version 2 ..."): its
            # holders are what matter (placement can differ between versions of a model).
            asked = re.search(r"version (\d+)", why)
            holders = self.version_holders.get(model, {}).get(int(asked.group(1))) if asked else None
            if holders is None:
                holders = self.holders.get(model, set())
            if node in holders:
                reachable = True
            else:
                reachable = any(not self.was_down(h, t0, ended) and
                                not self.cut_between(node, h, t0 - SUSPICION_WINDOW_S, ended)
                                for h in holders)
            if reachable:
                bad.append((started, node, model, status, why))
            else:
                excused += 1
        total = len(self.load.records)
        self.figures["requests"] = total
        self.figures["failed"] = len(failed)
        self.figures["failed_unexcused"] = len(bad)
        if bad:
            first = bad[:5]
            self.violations.append(
                "%d of %d requests failed while a holder was reachable (first: %s)" %
                (len(bad), total, "; ".join("n%d %s status %d at +%.1fs: %s" %
                                            (n, m, s, t - self.t0, w) for t, n, m, s, w in first)))

    def check_no_false_death(self):
        events = self.member_events()
        index_of = {n.name: n.index for n in self.lab.nodes}
        suspects = sum(1 for e in events if e[4] == "suspect")
        self.figures["suspect_events"] = suspects
        deaths = [e for e in events if e[4] == "dead"]
        false = []
        for t, observer, name, _, _ in deaths:
            subject = index_of.get(name)
            if subject is None:
                continue
            if self.was_down(subject, t - SUSPICION_WINDOW_S, t):
                continue
            if self.cut_between(observer, subject, t - SUSPICION_WINDOW_S, t):
                continue
            false.append("n%d declared %s dead at +%.1fs" % (observer, name, t - self.t0))
        self.figures["false_deaths"] = len(false)
        if false:
            self.violations.append("false deaths: " + "; ".join(false[:8]))

    def check_kill_detected(self):
        events = self.member_events()
        for step in self.sc["steps"]:
            if step["do"] != "kill" or "detect_within_ms" not in step:
                continue
            node = step["node"]
            killed_at = [t for n, t in self.kills if n == node][0]
            name = self.lab.nodes[node].name
            worst = 0.0
            for other in range(len(self.lab.nodes)):
                if other == node or self.was_down(other, killed_at, killed_at + 10):
                    continue
                seen = [t for t, o, s, _, to in events
                        if o == other and s == name and to != "alive" and t >= killed_at]
                if not seen:
                    self.violations.append("n%d never saw the killed n%d as not alive" %
                                           (other, node))
                    continue
                worst = max(worst, min(seen) - killed_at)
            self.figures["detect_ms"] = round(worst * 1000)
            if worst * 1000 > step["detect_within_ms"]:
                self.violations.append("the kill of n%d took %.0f ms to be seen everywhere (limit %d)"
                                       % (node, worst * 1000, step["detect_within_ms"]))

    def catalogs(self):
        out = []
        for n in self.lab.nodes:
            if not n.running():
                out.append(None)
                continue
            r = self.lab.cli(n.index, "models", "--json", timeout=10)
            if r.returncode != 0:
                out.append(None)
                continue
            models = json.loads(r.stdout)["models"]
            for m in models:
                for s in m.get("snapshots", []):
                    s.pop("holders", None)
            out.append(sorted(models, key=lambda m: m["model"]))
        return out

    def check_catalog_converges(self):
        started = time.time()
        while True:
            views = [v for v in self.catalogs() if v is not None]
            if views and all(v == views[0] for v in views):
                self.figures["converged_s"] = round(time.time() - started, 1)
                self.final_catalog = views[0]
                return
            if time.time() - started > 30:
                self.violations.append("catalogs still differ 30 s after the end")
                self.final_catalog = views[0] if views else []
                return
            time.sleep(0.5)

    def check_history_complete(self):
        for n in self.lab.nodes:
            if not n.running():
                continue
            r = self.lab.cli(n.index, "models", "--json", timeout=10)
            models = {m["model"]: m for m in json.loads(r.stdout)["models"]}
            for m in models.values():
                versions = [s["version"] for s in m["snapshots"]]
                if len(versions) != len(set(versions)):
                    self.violations.append("n%d: %s has a version number twice: %s" %
                                           (n.index, m["model"], versions))
            given = {}
            for op in self.ops:
                if op["kind"] != "push" or not op["ok"]:
                    continue
                key = (op["model"], op["version"])
                if key in given:
                    self.violations.append("%s version %d was acknowledged to two pushes" % key)
                given[key] = op["note"]
                snaps = {s["version"]: s for s in models.get(op["model"], {}).get("snapshots", [])}
                s = snaps.get(op["version"])
                if s is None or s.get("note") != op["note"]:
                    self.violations.append("n%d: acknowledged push %s (%s version %d) is %s" % (
                        n.index, op["note"], op["model"], op["version"],
                        "missing" if s is None else "another snapshot (%s)" % s.get("note")))
            # A label's history folds both sides' moves in (time, node) order, so a move's "from"
            # may differ from what its node answered; its action and target may not.
            for key in set((op["model"], op["kind"], op["to"]) for op in self.ops
                           if op["kind"] in ("promote", "rollback") and op["ok"]):
                acked = sum(1 for op in self.ops if op["ok"] and
                            (op["model"], op["kind"], op.get("to")) == key)
                history = models.get(key[0], {}).get("labels", {}).get(
                    "production", {}).get("history", [])
                kept = sum(1 for h in history if (h["action"], h["to"]) == key[1:])
                if kept < acked:
                    self.violations.append("n%d: %d acknowledged %s of %s to %d, %d in the history"
                                           % (n.index, acked, key[1], key[0], key[2], kept))
        self.figures["ops_acknowledged"] = sum(1 for op in self.ops if op["ok"])

    def check_all_alive_at_end(self):
        limit = self.sc.get("settle_s", 20)
        started = time.time()
        running = [n.index for n in self.lab.nodes if n.running()]
        names = {self.lab.nodes[i].name for i in running}
        while True:
            views = [self.lab.members(i) for i in running]
            if all(v and all(v.get(nm) == "alive" for nm in names) for v in views):
                self.figures["settled_s"] = round(time.time() - started, 1)
                return
            if time.time() - started > limit:
                self.violations.append("%d s after the end not every node sees every node alive: %s"
                                       % (limit, views))
                return
            time.sleep(0.3)

    def check_near_holders_preferred(self):
        step = [s for s in self.sc["steps"] if s["do"] == "delay"][0]
        side = {}
        for k, g in enumerate(step["groups"]):
            for i in g:
                side[i] = k
        fault = [f for f in self.faults if f["kind"] == "delay"][0]
        t0, t1 = fault["start"] + 2, fault["end"]
        slow, total = 0, 0
        slow_by = {}
        # Holders as the catalog said at the start and says now: a copy taken or dropped in
        # between (traffic, re-replication) changes where a node may rightly send a request.
        now_held = {m: set(i for h in self.lab.holders(0, m).values() for i in h)
                    for m in self.models}
        for started, ended, node, model, status, _, _ in self.load.between(t0, t1):
            held = [self.holders[model], now_held[model]]
            if any(node in h or not any(side[x] == side[node] for x in h) for h in held):
                continue
            total += 1
            if ended - started > step["ms"] / 1000.0:
                slow += 1
                slow_by.setdefault("n%d %s" % (node, model), []).append(
                    "%d@%.1f" % (round((ended - started) * 1000), started - fault["start"]))
        self.figures["near_requests"] = total
        self.figures["near_requests_slow"] = slow
        if total == 0:
            self.violations.append("no request had a near holder to prefer (placement)")
        elif slow > total * 0.05:
            self.violations.append("%d of %d requests with a holder on their side of the slow link "
                                   "took longer than one crossing (%d ms): %s" %
                                   (slow, total, step["ms"], json.dumps(slow_by)[:600]))


def step_partition(run, s):
    groups = s["groups"]
    run.lab.partition(*groups)
    pairs = [(a, b) for g in groups for h in groups if g is not h for a in g for b in h]
    run.add_fault(pairs, "partition")


def step_cut(run, s):
    run.lab.cut(s["from"], s["to"])
    run.add_fault([(s["from"], s["to"])], "cut")


def step_loss(run, s):
    run.lab.loss(s["p"])
    run.add_fault([], "loss")


def step_duplicate(run, s):
    run.lab.duplicate(s["p"])
    run.add_fault([], "duplicate")


def step_delay(run, s):
    run.lab.delay(s["groups"][0], s["groups"][1], s["ms"], s.get("jitter_ms", 0))
    run.add_fault([], "delay")


def step_flap(run, s):
    """Cuts and heals the link between the groups every `period` s, for `for` s, in a thread."""
    groups = s["groups"]
    pairs = [(a, b) for a in groups[0] for b in groups[1]]
    run.add_fault(pairs, "flap")  # counted as cut for the whole flapping time

    def flap():
        end = time.time() + s["for"]
        down = True
        while time.time() < end:
            if down:
                run.lab.partition(*groups)
            else:
                run.lab.heal()
            down = not down
            time.sleep(s["period"])
        run.lab.heal()
    t = threading.Thread(target=flap, daemon=True)
    t.start()
    run.flappers.append(t)


def step_heal(run, s):
    for t in run.flappers:
        t.join()
    run.lab.heal()
    run.end_faults()


def step_kill(run, s):
    now = time.time()  # before the signal: requests it cuts off are the node's being down
    run.lab.kill(s["node"])
    run.kills.append((s["node"], now))
    run.down.setdefault(s["node"], []).append([now, None])


def step_pause(run, s):
    now = time.time()
    run.lab.pause(s["node"])
    run.kills.append((s["node"], now))
    run.down.setdefault(s["node"], []).append([now, None])


def step_resume(run, s):
    run.lab.resume(s["node"])
    for span in run.down.get(s["node"], []):
        if span[1] is None:
            span[1] = time.time()


def step_start(run, s):
    run.lab.start(s["node"])
    for span in run.down.get(s["node"], []):
        if span[1] is None:
            span[1] = time.time()


def step_push(run, s):
    run.push(s["node"], s["model"], run.files[s.get("file", 0)], s.get("expect", "ok"),
             s.get("message"))


def step_promote(run, s):
    run.move("promote", s["node"], s["model"], s["version"], s.get("expect", "ok"),
             s.get("message"))


def step_rollback(run, s):
    run.move("rollback", s["node"], s["model"], None, s.get("expect", "ok"), s.get("message"))


ACTIONS = {"partition": step_partition, "cut": step_cut, "loss": step_loss, "delay": step_delay,
           "duplicate": step_duplicate,
           "flap": step_flap, "heal": step_heal, "kill": step_kill, "start": step_start,
           "pause": step_pause, "resume": step_resume,
           "push": step_push, "promote": step_promote, "rollback": step_rollback,
           "end": lambda run, s: None}


def execute(name, sc, keep=False):
    """Runs scenario `sc`; returns (the Run with its figures and violations, its directory).
    The directory (node logs) is removed when it passed, unless `keep`."""
    tmp = tempfile.mkdtemp(prefix="shoal-faults-%s-" % name)
    print("== %s: %s (logs in %s)" % (name, sc["about"], tmp), flush=True)
    files = train_models(tmp)
    with Lab(sc["nodes"], os.path.join(tmp, "lab"), node_args=sc.get("node_args", [])) as lab:
        run = Run(lab, sc, files)
        run.setup()
        with Load(lab, run.models, rate=sc["load"]) as load:
            run.load = load
            run.t0 = time.time()
            for s in sc["steps"]:
                wait = run.t0 + s["at"] - time.time()
                if wait > 0:
                    time.sleep(wait)
                print("  +%5.1fs %s" % (time.time() - run.t0, json.dumps(s)), flush=True)
                ACTIONS[s["do"]](run, s)
        run.end_faults()
        lab.heal()
        run.figures["packets_dropped"] = lab.dropped
        run.figures["packets_delayed"] = lab.delayed
        run.figures["packets_duplicated"] = lab.duplicated
        for check in sc["checks"]:
            getattr(run, "check_" + check)()
        run.events = run.member_events()
    print("  figures: " + json.dumps(run.figures), flush=True)
    if run.violations:
        print("FAILED %s:\n  - %s" % (name, "\n  - ".join(run.violations)), flush=True)
        print("  node logs kept in " + tmp)
    elif not keep:
        subprocess.run(["rm", "-rf", tmp])
    return run, tmp


def run_scenario(name, keep=False):
    with open(os.path.join(HERE, "scenarios.json")) as f:
        sc = json.load(f)[name]
    run, _ = execute(name, sc, keep)
    if run.violations:
        return 1
    print("PASSED %s" % name)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        sys.exit(run_scenario(sys.argv[1], "--keep" in sys.argv))
    except LabUnavailable as e:
        print("FAILED: the fault lab cannot run here: %s" % e)
        sys.exit(1)
