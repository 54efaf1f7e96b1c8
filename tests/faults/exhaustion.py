#!/usr/bin/env python3
"""Resource exhaustion against one real node: what a hostile or broken client can throw at the
HTTP port, while an ordinary client keeps asking for inferences. The node must refuse, stay
responsive for everybody else, and keep its memory bounded.

  idle        10,000 connections opened and left silent
  slowloris   100 connections sending their headers one byte a second
  huge body   Content-Length: 4 GiB (413 at once, nothing read)
  nesting     a 4 MB body of nested JSON arrays (400)
  1 TB model  fastText files whose header claims a 1 TB matrix or a 2^31 dimension, pushed
              (refused, nothing stored)

The ordinary client sends an inference every 50 ms throughout; every one must succeed, the
slowest under 1 s. The node closes silent and slow connections after its idle timeout (60 s), so
the run waits for that and checks they were closed by the node. Prints the figures.
usage: exhaustion.py            (root, as every fault test)
"""
import json
import os
import resource
import socket
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from faultlab import Lab, HTTP_PORT, LabUnavailable  # noqa: E402
from run import train_models  # noqa: E402

IDLE = 10000
SLOW = 100
IDLE_TIMEOUT_S = 60  # http_server.hpp: idle_timeout


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Prober:
    """The ordinary client: one inference every 50 ms on fresh connections; records latency."""

    def __init__(self, lab, model):
        self.lab, self.model = lab, model
        self.samples, self.failures = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                            "data": ["where is my parcel"]}]}).encode()

    def run(self):
        while not self.stop.is_set():
            t = time.time()
            status, body = self.lab.http(0, "POST", "/v2/models/%s/infer" % self.model, self.body,
                                         timeout=5)
            took = time.time() - t
            self.samples.append(took)
            if status != 200:
                self.failures.append("%d %s" % (status, body[:120]))
            self.stop.wait(0.05)


def raw(addr, data, timeout=10):
    """Sends `data` on a fresh connection; returns everything the node sends back."""
    s = socket.create_connection((addr, HTTP_PORT), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
            if b"\r\n\r\n" in out and len(out) > 200:
                return out
    except socket.timeout:
        return out
    finally:
        s.close()


def huge_model(path, out_path, matrix=True):
    """A fastText .bin whose header claims a 1 TB input matrix (or a 2^31-1 dimension)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if matrix:
        # the input matrix header follows the dictionary; find it as the (rows, dim) pair of
        # int64s whose dim matches args.dim (the third int32 of the file)
        dim = struct.unpack_from("<i", data, 8)[0]
        for at in range(len(data) - 16):
            rows, cols = struct.unpack_from("<qq", data, at)
            if cols == dim and 0 < rows < 10_000_000:
                struct.pack_into("<qq", data, at, 1 << 30, 256)  # 2^30 x 256 floats = 1 TiB
                break
        else:
            raise RuntimeError("no matrix header found")
    else:
        struct.pack_into("<i", data, 8, 2**31 - 1)
    with open(out_path, "wb") as f:
        f.write(bytes(data))
    return out_path


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + SLOW + 200
    if hard < want:
        print("FAILED: this test opens %d connections and the file limit is %d (raise it)" %
              (want, hard))
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    tmp = tempfile.mkdtemp(prefix="shoal-faults-exhaustion-")
    files = train_models(tmp)
    problems, figures = [], {}
    with Lab(1, os.path.join(tmp, "lab"), replication=1, secret=False) as lab:
        node = lab.nodes[0]
        r = lab.cli(0, "snapshot", "push", "acme/bot", files[0])
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        pid = node.proc.pid
        prober = Prober(lab, "acme/bot")
        prober.thread.start()
        time.sleep(1)
        figures["rss_before_mb"] = round(rss_mb(pid))

        # 10,000 silent connections and 100 slow ones.
        idle = []
        started = time.time()
        for _ in range(IDLE):
            idle.append(socket.create_connection((node.addr, HTTP_PORT), timeout=10))
        figures["idle_open_s"] = round(time.time() - started, 1)
        slow = [socket.create_connection((node.addr, HTTP_PORT), timeout=10) for _ in range(SLOW)]
        request = b"POST /v2/models/acme/bot/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
        opened = time.time()
        time.sleep(1)
        figures["rss_with_connections_mb"] = round(rss_mb(pid))

        # While they are open: the hostile requests, each on its own connection.
        answer = raw(node.addr, b"POST /v2/models/acme/bot/infer HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 4294967296\r\n\r\n{")
        if not answer.startswith(b"HTTP/1.1 413"):
            problems.append("a 4 GiB Content-Length got %r, not 413" % answer[:80])
        nested = b"[" * (4 * 1024 * 1024 - 64)
        answer = raw(node.addr, b"POST /v2/models/acme/bot/infer HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(nested)
                     + nested)
        if not answer.startswith(b"HTTP/1.1 400"):
            problems.append("4 MB of nested arrays got %r, not 400" % answer[:80])
        figures["rss_after_nesting_mb"] = round(rss_mb(pid))
        for kind, matrix in (("1 TB matrix", True), ("2^31 dimension", False)):
            bad = huge_model(files[0], os.path.join(tmp, "huge.bin"), matrix)
            t = time.time()
            r = lab.cli(0, "snapshot", "push", "acme/huge", bad)
            took = time.time() - t
            if r.returncode == 0:
                problems.append("a fastText file claiming a %s was stored" % kind)
            elif "fastText" not in r.stderr and "model" not in r.stderr:
                problems.append("the %s push was refused without saying why: %s" % (kind, r.stderr))
            figures["push_%s_refused_s" % kind.replace(" ", "_")] = round(took, 2)
        if lab.cli(0, "snapshot", "list", "acme/huge").returncode == 0:
            problems.append("acme/huge exists after refused pushes")
        figures["rss_after_huge_models_mb"] = round(rss_mb(pid))

        # Slowloris: one header byte a second on each slow connection, until the node hangs up.
        line = b"X-Pad: " + b"a" * 200 + b"\r\n"
        sent = 0
        closed_slow = 0
        while time.time() - opened < IDLE_TIMEOUT_S + 8 and closed_slow < SLOW:
            closed_slow = 0
            for s in slow:
                if s is None:
                    closed_slow += 1
            for k, s in enumerate(slow):
                if s is None:
                    continue
                try:
                    s.send((request + line * 100)[sent:sent + 1])
                except OSError:
                    slow[k] = None
            sent += 1
            time.sleep(1)
        slow_closed_after = time.time() - opened
        figures["slowloris_closed_after_s"] = round(slow_closed_after)
        figures["slowloris_closed"] = sum(1 for s in slow if s is None)
        if figures["slowloris_closed"] < SLOW:
            problems.append("%d of %d slowloris connections still open after %d s" % (
                SLOW - figures["slowloris_closed"], SLOW, slow_closed_after))

        # The silent ones: closed by the node (EOF on read) after its idle timeout.
        closed = 0
        for s in idle:
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                closed += 1
            s.close()
        figures["idle_closed_by_node"] = closed
        if closed < IDLE:
            problems.append("%d of %d silent connections were still open after %d s" % (
                IDLE - closed, IDLE, time.time() - opened))
        time.sleep(1)
        figures["rss_after_close_mb"] = round(rss_mb(pid))

        prober.stop.set()
        prober.thread.join()
        lat = sorted(prober.samples)
        figures["probe_requests"] = len(lat)
        figures["probe_failed"] = len(prober.failures)
        figures["probe_p50_ms"] = round(lat[len(lat) // 2] * 1000, 1)
        figures["probe_p99_ms"] = round(lat[int(len(lat) * 0.99)] * 1000, 1)
        figures["probe_max_ms"] = round(lat[-1] * 1000, 1)
        if prober.failures:
            problems.append("%d ordinary requests failed: %s" % (len(prober.failures),
                                                                prober.failures[:3]))
        if lat[-1] > 1.0:
            problems.append("an ordinary request took %.1f s" % lat[-1])
        if figures["rss_with_connections_mb"] - figures["rss_before_mb"] > 512:
            problems.append("10,000 idle connections cost %d MB" % (
                figures["rss_with_connections_mb"] - figures["rss_before_mb"]))
        if not node.running():
            problems.append("the node died: " + lab.log_tail(0))
    print("  figures: " + json.dumps(figures))
    if problems:
        print("FAILED exhaustion:\n  - " + "\n  - ".join(problems) + "\n  (logs in %s)" % tmp)
        return 1
    print("PASSED exhaustion")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabUnavailable as e:
        print("FAILED: the fault lab cannot run here: %s" % e)
        sys.exit(1)
