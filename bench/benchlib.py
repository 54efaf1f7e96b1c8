"""Helpers the Python benches share (bench/*.py import it from their own directory)."""
import socket


def free_ports(n):
    """Returns n TCP ports free on loopback right now (bound together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# ---- shared by the newer benches (micro_batch.py, overload.py, run.sh's report) ----------------

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOAL = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))
FASTTEXT = os.environ.get("FASTTEXT_BIN", "fasttext")
INFER_LUA = os.path.join(ROOT, "bench", "infer.lua")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Node:
    """A `shoal node` on free loopback ports, in its own data directory under `tmp`. Stop it with
    stop(); Nodes still running when the bench exits are killed by kill_all()."""

    running = []

    def __init__(self, tmp, name, args=(), conf="", prefix=(), binary=None):
        self.name = name
        self.http, self.zmq, self.cluster = free_ports(3)
        conf_path = os.path.join(tmp, name + ".conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        self.log_path = os.path.join(tmp, name + ".log")
        log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            list(prefix) + [binary or SHOAL, "node", "--config", conf_path, "--name", name, "--data-dir",
             os.path.join(tmp, name), "--http-port", str(self.http), "--zmq-port", str(self.zmq), "--grpc-port", "0",
             "--cluster-port", str(self.cluster), "--replication-factor", "1"] + list(args),
            stdout=log_file, stderr=log_file)
        Node.running.append(self)
        for _ in range(200):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % self.http,
                                       timeout=1)
                return
            except Exception:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise SystemExit("the node did not start: see " + self.log_path)

    def push(self, model, path, key=None):
        cmd = [SHOAL, "snapshot", "push", model, path, "--node", "127.0.0.1:%d" % self.zmq]
        if key:
            cmd += ["--key", key]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("push failed: " + r.stderr)

    def url(self, model):
        return "http://127.0.0.1:%d/v2/models/%s/infer" % (self.http, model)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self in Node.running:
            Node.running.remove(self)

    @staticmethod
    def kill_all():
        """Stops every node still running (SIGTERM, then SIGKILL after 15 s)."""
        for n in list(Node.running):
            n.stop()


def train_fasttext(tmp, name, input_path, args):
    """Trains a supervised model with the fasttext tool; returns the .bin path."""
    out = os.path.join(tmp, name)
    subprocess.run([FASTTEXT, "supervised", "-input", input_path, "-output", out, "-verbose", "0",
                    "-thread", "1", "-seed", "1"] + list(args), check=True)
    return out + ".bin"


def faq_corpus(path, labels=1000, lines_per_label=5, seed=7):
    """Writes a training set with many labels (a large FAQ bot): made-up keyword phrases."""
    import random
    rnd = random.Random(seed)
    syllables = ["ka", "lo", "mi", "zu", "ter", "van", "qui", "sol", "re", "po"]
    with open(path, "w") as f:
        for line in range(labels * lines_per_label):
            label = line % labels
            lr = random.Random(label)
            words = ["".join(lr.choice(syllables) for _ in range(3)) for _ in range(4)]
            f.write("__label__faq%d %s\n" % (label, " ".join(rnd.choice(words)
                                                                for _ in range(5))))


def parse_latency(out, p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\b" % re.escape(str(p)), out, re.M)
    if not m:
        return None
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk(url, seconds, threads=2, connections=32, script=INFER_LUA, env=None):
    """Runs closed-loop wrk --latency; returns rps, requests, p50/p90/p99 (ms), non-2xx."""
    r = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                        "--latency", "-s", script, url], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})), check=True)
    out = r.stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50_ms": parse_latency(out, 50), "p90_ms": parse_latency(out, 90),
            "p99_ms": parse_latency(out, 99),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "none"}


def shoal_bench(port, model, args, pid=None, prefix=()):
    """Runs `shoal bench --json` against 127.0.0.1:port (and the node's pid for its CPU and
    memory); returns the parsed report."""
    r = subprocess.run(list(prefix) + [SHOAL, "bench", "--http", "127.0.0.1:%d" % port,
                                       "--model", model, "--json"] + list(args) +
                       (["--pid", str(pid)] if pid else []), capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("shoal bench failed: " + r.stderr)
    return json.loads(r.stdout)


def pct(values, p):
    """The p-th percentile of values (nearest rank)."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def rss_bytes(pid):
    """The resident memory of process pid."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
