"""The fault harness: real `shoal node` processes, each in a Linux network namespace of its own,
on one bridge, with faults put on the links between them.

    with Lab(5, tmp) as lab:          # namespaces, veth pairs, a bridge; 5 nodes started
        lab.partition([0, 1, 2], [3, 4])
        lab.heal()

Network: the lab makes a bridge in the caller's namespace (address .254 of a /24 of its own) and a
namespace per node, joined to the bridge by a veth pair; node i listens on .(i+1) on the default
ports. The caller (the test, its CLI calls and its load) reaches every node through the bridge
from .254; faults touch only traffic between nodes, so what the client sees is what the cluster
does, not what the fault does to the client's own link.

Faults are iptables rules in each node's namespace, in a chain of the lab's own (SHOAL_FAULTS),
hooked into INPUT and OUTPUT and flushed by heal():
  cut(a, b)              b stops hearing a (packets from a dropped at b): one direction
  partition(g1, g2, ...) both directions cut between every pair of groups
  loss(p)                each packet between two nodes dropped with probability p (statistic)
  duplicate(p)           each packet between two nodes sent twice with probability p (TEE)
  delay(g1, g2, ms, j)   packets between the groups held ms ± j (NFQUEUE + delayer.py: the
                         kernel here has no sch_netem, so tc netem is not used)
Nodes: kill(i) (SIGKILL), pause(i)/resume(i) (SIGSTOP/SIGCONT), stop(i) (SIGTERM), start(i)
(again, same data directory and id).

Clean-up: close() (and the with block, and an atexit hook for a test that dies) kills every
process and deletes the namespaces and the bridge. Leftovers of a lab whose process was killed
(named after its pid) are removed by the next lab. Namespaces need root: without them the lab
raises LabUnavailable with the reason, and the tests fail with it; they never pass without
running.
"""
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOAL = os.environ.get("SHOAL_BIN", os.path.join(ROOT, "build", "shoal"))
DELAYER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "delayer.py")
PYTHON = "/usr/bin/python3"
PREFIX = "shoalfault-"  # namespace names: shoalfault-<pid>-<node>
HTTP_PORT, ZMQ_PORT, CLUSTER_PORT = 7422, 7421, 7420


class LabUnavailable(RuntimeError):
    """The machine cannot make network namespaces (not root, no ip or iptables)."""


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_leftovers():
    """Deletes namespaces and bridges of labs whose process is gone (a killed test run)."""
    r = sh("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"%s(\d+)-\d+" % PREFIX, line)
        if m and not _pid_alive(int(m.group(1))):
            for pid in sh("ip", "netns", "pids", line.split()[0], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", line.split()[0], check=False)
    r = sh("ip", "-o", "link", "show", "type", "bridge", check=False)
    for m in re.finditer(r"\d+: (sf(\d+)b):", r.stdout):
        if not _pid_alive(int(m.group(2))):
            sh("ip", "link", "del", m.group(1), check=False)


def check_available():
    """Raises LabUnavailable saying why this machine cannot run the lab."""
    if os.geteuid() != 0:
        raise LabUnavailable("the fault tests need root (network namespaces, iptables); run them "
                             "as root, as CI does")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            raise LabUnavailable("the fault tests need `%s` (scripts/deps.sh test installs it)" % tool)
    probe = "%s%d-probe" % (PREFIX, os.getpid())
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        raise LabUnavailable("cannot create a network namespace: " + r.stderr.strip())
    r = sh("ip", "netns", "exec", probe, "iptables", "-S", check=False)
    sh("ip", "netns", "del", probe, check=False)
    if r.returncode != 0:
        raise LabUnavailable("iptables does not work in a namespace: " + r.stderr.strip())


class Node:
    def __init__(self, lab, index):
        self.lab, self.index = lab, index
        self.ns = "%s%d-%d" % (PREFIX, os.getpid(), index)
        self.addr = "%s.%d" % (lab.net, index + 1)
        self.name = "n%d" % index
        self.data_dir = os.path.join(lab.tmp, self.name)
        self.log_path = os.path.join(lab.tmp, self.name + ".log")
        self.proc = None
        self.extra = []  # more node flags for this node
        self.env = {}    # more environment for this node's process (LD_PRELOAD for fail_io)

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Lab:
    def __init__(self, nodes, tmp=None, node_args=(), replication=2, secret=True, start=True,
                 data_dirs=None):
        check_available()
        sweep_leftovers()
        self.tmp = tmp or tempfile.mkdtemp(prefix="shoal-faults-")
        os.makedirs(self.tmp, exist_ok=True)
        pid = os.getpid()
        self.net = "10.%d.%d" % (100 + (pid // 250) % 100, pid % 250)
        self.bridge = "sf%db" % pid
        self.node_args = list(node_args)
        self.replication = replication
        self.delayers = []
        self.dropped = 0  # packets the fault rules dropped (counted at each heal)
        self.delayed = 0  # packets they held back
        self.duplicated = 0  # packets they sent twice
        self.queue = 10
        self.closed = False
        self.secret_file = None
        if secret:
            self.secret_file = os.path.join(self.tmp, "secret")
            with open(self.secret_file, "w") as f:
                f.write("fault-lab-" + os.urandom(8).hex() + "\n")
        self.nodes = [Node(self, i) for i in range(nodes)]
        if data_dirs:
            for node, d in zip(self.nodes, data_dirs):
                node.data_dir = d
        atexit.register(self.close)
        self._make_network()
        if start:
            for i in range(nodes):
                self.start(i)
            self.wait_members(nodes)

    # ---- network ---------------------------------------------------------------------------
    def _make_network(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", self.net + ".254/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for n in self.nodes:
            host_end = "sf%dv%d" % (os.getpid(), n.index)
            sh("ip", "netns", "add", n.ns)
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
            sh("ip", "link", "set", host_end, "master", self.bridge, "up")
            self.ns_sh(n.index, "ip", "addr", "add", n.addr + "/24", "dev", "eth0")
            self.ns_sh(n.index, "ip", "link", "set", "eth0", "up")
            self.ns_sh(n.index, "ip", "link", "set", "lo", "up")
            for chain in ("INPUT", "OUTPUT"):
                self.ns_sh(n.index, "iptables", "-N", "SHOAL_FAULTS_" + chain)
                self.ns_sh(n.index, "iptables", "-A", chain, "-j", "SHOAL_FAULTS_" + chain)

    def ns_sh(self, i, *args, check=True):
        return sh("ip", "netns", "exec", self.nodes[i].ns, *args, check=check)

    def _rule(self, i, chain, *rule):
        self.ns_sh(i, "iptables", "-A", "SHOAL_FAULTS_" + chain, *rule)

    def cut(self, a, b):
        """Node b stops hearing node a (a still hears b)."""
        self._rule(b, "INPUT", "-s", self.nodes[a].addr, "-j", "DROP")

    def partition(self, *groups):
        """No packet crosses between nodes of different groups, either way."""
        for g in groups:
            for h in groups:
                if g is not h:
                    for a in g:
                        for b in h:
                            self.cut(a, b)

    def loss(self, p, nodes=None):
        """Each packet between two of `nodes` (default all) is dropped with probability p."""
        nodes = list(range(len(self.nodes))) if nodes is None else nodes
        for b in nodes:
            for a in nodes:
                if a != b:
                    self._rule(b, "INPUT", "-s", self.nodes[a].addr, "-m", "statistic", "--mode",
                               "random", "--probability", str(p), "-j", "DROP")

    def duplicate(self, p, nodes=None):
        """Each packet between two of `nodes` is sent twice with probability p."""
        nodes = list(range(len(self.nodes))) if nodes is None else nodes
        for a in nodes:
            for b in nodes:
                if a != b:
                    self.ns_sh(a, "iptables", "-t", "mangle", "-A", "POSTROUTING", "-d",
                               self.nodes[b].addr, "-m", "statistic", "--mode", "random",
                               "--probability", str(p), "-j", "TEE", "--gateway",
                               self.nodes[b].addr)

    def delay(self, group_a, group_b, ms, jitter_ms=0):
        """Packets between the two groups (both ways) are held ms ± jitter_ms each way."""
        for g, h in ((group_a, group_b), (group_b, group_a)):
            for a in g:
                self.queue += 1
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", self.nodes[a].ns, PYTHON, DELAYER, str(self.queue),
                     str(ms), str(jitter_ms), str(self.queue)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                line = proc.stdout.readline()
                if line.strip() != "ready":
                    raise RuntimeError("delayer did not start: " + proc.stderr.read())
                self.delayers.append(proc)
                for b in h:
                    self._rule(a, "OUTPUT", "-d", self.nodes[b].addr, "-j", "NFQUEUE",
                               "--queue-num", str(self.queue))

    def fault_counts(self):
        """(packets dropped, packets queued for delay, packets duplicated) by the fault rules in
        force: proof that a fault touched real traffic."""
        dropped = queued = duplicated = 0
        for n in self.nodes:
            out = self.ns_sh(n.index, "iptables", "-t", "mangle", "-L", "POSTROUTING", "-v", "-x",
                             "-n").stdout
            for line in out.splitlines()[2:]:
                cols = line.split()
                if len(cols) > 2 and cols[2] == "TEE":
                    duplicated += int(cols[0])
            for chain in ("INPUT", "OUTPUT"):
                out = self.ns_sh(n.index, "iptables", "-L", "SHOAL_FAULTS_" + chain, "-v", "-x",
                                 "-n").stdout
                for line in out.splitlines()[2:]:
                    cols = line.split()
                    if len(cols) > 2 and cols[2] == "DROP":
                        dropped += int(cols[0])
                    elif len(cols) > 2 and cols[2] == "NFQUEUE":
                        queued += int(cols[0])
        return dropped, queued, duplicated

    def heal(self):
        """Takes every fault off every link; adds what the rules did to self.dropped,
        self.delayed and self.duplicated."""
        d, q, t = self.fault_counts()
        self.dropped += d
        self.delayed += q
        self.duplicated += t
        for n in self.nodes:
            for chain in ("INPUT", "OUTPUT"):
                self.ns_sh(n.index, "iptables", "-F", "SHOAL_FAULTS_" + chain)
            self.ns_sh(n.index, "iptables", "-t", "mangle", "-F", "POSTROUTING")
        for d in self.delayers:
            d.kill()
            d.wait()
        self.delayers = []

    # ---- nodes -----------------------------------------------------------------------------
    def seeds(self):
        return ",".join("%s:%d" % (n.addr, CLUSTER_PORT) for n in self.nodes[:3])

    def start(self, i, wait=True):
        n = self.nodes[i]
        args = ["ip", "netns", "exec", n.ns, SHOAL, "node", "--name", n.name, "--data-dir",
                n.data_dir, "--host", n.addr, "--grpc-port", "0",
                "--replication-factor", str(self.replication)] + self.node_args + n.extra
        if len(self.nodes) > 1:
            args += ["--seeds", self.seeds()]
        if self.secret_file:
            args += ["--cluster-secret-file", self.secret_file]
        log = open(n.log_path, "ab")
        n.proc = subprocess.Popen(args, stdout=log, stderr=log, env=dict(os.environ, **n.env))
        log.close()
        if wait:
            self.wait_ready(i)

    def wait_ready(self, i, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.nodes[i].running():
                raise RuntimeError("node %d exited: %s" % (i, self.log_tail(i)))
            status, _ = self.http(i, "GET", "/v2/health/ready", timeout=1)
            if status == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("node %d not ready in %d s: %s" % (i, timeout, self.log_tail(i)))

    def log_tail(self, i, lines=20):
        try:
            with open(self.nodes[i].log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def log(self, i):
        with open(self.nodes[i].log_path, errors="replace") as f:
            return f.read()

    def kill(self, i):
        self._signal(i, signal.SIGKILL, wait=True)

    def stop(self, i):
        self._signal(i, signal.SIGTERM, wait=True)

    def pause(self, i):
        self._signal(i, signal.SIGSTOP)

    def resume(self, i):
        self._signal(i, signal.SIGCONT)

    def _signal(self, i, sig, wait=False):
        p = self.nodes[i].proc
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            if wait:
                p.wait(timeout=30)

    # ---- talking to nodes ------------------------------------------------------------------
    def cli(self, i, *args, timeout=60):
        """Runs `shoal ARGS --node <node i>`; returns the CompletedProcess (never raises on exit
        status)."""
        return subprocess.run([SHOAL, *args, "--node", "%s:%d" % (self.nodes[i].addr, ZMQ_PORT),
                               "--timeout", str(timeout)],
                              capture_output=True, text=True, timeout=timeout + 30)

    def cli_json(self, i, *args, timeout=30):
        r = self.cli(i, *args, "--json", timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("shoal %s on node %d: %s" % (" ".join(args), i, r.stderr.strip()))
        return json.loads(r.stdout)

    def http(self, i, method, path, body=None, timeout=5):
        """One HTTP request to node i; (status, body bytes), status 0 when nothing answered."""
        conn = http.client.HTTPConnection(self.nodes[i].addr, HTTP_PORT, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            return 0, b""
        finally:
            conn.close()

    def members(self, i, timeout=5):
        """Node i's member table: {name: status}; None when it does not answer."""
        r = self.cli(i, "cluster", "status", "--json", timeout=timeout)
        if r.returncode != 0:
            return None
        return {m["name"]: m["status"] for m in json.loads(r.stdout)["members"]}

    def wait_members(self, count, nodes=None, timeout=30):
        nodes = range(len(self.nodes)) if nodes is None else nodes
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = [self.members(i) for i in nodes]
            if all(v and sum(s == "alive" for s in v.values()) == count for v in views):
                return
            time.sleep(0.2)
        raise RuntimeError("the cluster did not form: %s" % [self.members(i) for i in nodes])

    def holders(self, i, model):
        """{version: [node index, ...]} of `model` as node i's catalog says."""
        by_name = {n.name: n.index for n in self.nodes}
        listing = self.cli_json(i, "snapshot", "list", model)
        return {s["version"]: sorted(by_name[h] for h in s["holders"] if h in by_name)
                for s in listing["snapshots"]}

    # ---- clean-up --------------------------------------------------------------------------
    def close(self):
        if self.closed:
            return
        self.closed = True
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGCONT)
                n.proc.kill()
                n.proc.wait()
        for d in self.delayers:
            d.kill()
            d.wait()
        for n in self.nodes:
            sh("ip", "netns", "del", n.ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Load:
    """Inference load from the caller's namespace: `threads` threads, each keeping one HTTP
    connection to its node (round robin over `nodes`) and asking the `models` in turn, paced to
    `rate` requests a second in all. Every request is recorded as (sent, answered, node, model,
    status, version, why), times from time.time(), status 0 for no answer in `timeout` s, why:
    the start of a failure's answer."""

    def __init__(self, lab, models, nodes=None, threads=4, rate=100, timeout=10):
        self.lab, self.models, self.rate, self.timeout = lab, list(models), rate, timeout
        self.nodes = list(range(len(lab.nodes))) if nodes is None else list(nodes)
        self.records = []
        self.lock = threading.Lock()  # guards records: appended by every load thread
        self.stopping = threading.Event()
        self.workers = [threading.Thread(target=self._run, args=(k, threads), daemon=True)
                        for k in range(threads)]

    def __enter__(self):
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stopping.set()
        for w in self.workers:
            w.join()

    def _run(self, k, threads):
        node = self.nodes[k % len(self.nodes)]
        period = threads / float(self.rate)
        conn = None
        step = k
        next_at = time.monotonic()
        body_of = {}
        while not self.stopping.is_set():
            model = self.models[step % len(self.models)]
            step += 1
            body = body_of.setdefault(model, json.dumps({"inputs": [{
                "name": "text", "shape": [1], "datatype": "BYTES",
                "data": ["where is my parcel"]}]}).encode())
            started = time.time()
            status, version, why = 0, None, ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.lab.nodes[node].addr, HTTP_PORT,
                                                      timeout=self.timeout)
                conn.request("POST", "/v2/models/%s/infer" % model, body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                status = r.status
                if status == 200:
                    version = json.loads(data).get("model_version")
                else:
                    why = data[:300].decode(errors="replace")
            except (OSError, http.client.HTTPException, ValueError) as e:
                why = repr(e)
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.records.append((started, time.time(), node, model, status, version, why))
            next_at += period
            pause = next_at - time.monotonic()
            if pause > 0:
                self.stopping.wait(pause)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    def between(self, t0, t1):
        with self.lock:
            return [r for r in self.records if t0 <= r[0] < t1]
