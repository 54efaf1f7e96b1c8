"""The Python client against a real node (`shoal node` on free loopback ports): push, infer,
list, models, promote, rollback, status, cluster status, and errors as ShoalError.

Run by ctest (python_client_test) with PYTHONPATH=build/clients/python, SHOAL_BIN,
FASTTEXT_BIN and SHOAL_SOURCE_DIR set."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

from shoal_client import Client, ShoalError

SHOAL = os.environ.get("SHOAL_BIN", "build/shoal")
FASTTEXT = os.environ.get("FASTTEXT_BIN", "fasttext")
SOURCE = os.environ.get("SHOAL_SOURCE_DIR", ".")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(tmp, name, corpus):
    out = os.path.join(tmp, name)
    subprocess.run([FASTTEXT, "supervised", "-input", corpus, "-output", out, "-epoch", "25",
                    "-lr", "0.5", "-dim", "16", "-bucket", "20000", "-wordNgrams", "2",
                    "-verbose", "0"], check=True)
    return out + ".bin"


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shoal-py-")
        cls.v1 = train(cls.tmp, "v1", os.path.join(SOURCE, "examples", "intents-v1.txt"))
        cls.v2 = train(cls.tmp, "v2", os.path.join(SOURCE, "examples", "intents-v2.txt"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start_node(self, *extra):
        http, zmq_port, cluster = free_port(), free_port(), free_port()
        data = tempfile.mkdtemp(prefix="node-", dir=self.tmp)
        log = open(os.path.join(data, "node.log"), "wb")
        node = subprocess.Popen([SHOAL, "node", "--data-dir", data, "--http-port", str(http),
                                 "--zmq-port", str(zmq_port), "--grpc-port", str(free_port()),
                                 "--cluster-port", str(cluster)]
                                + list(extra), stdout=log, stderr=log)

        def stop():
            node.terminate()
            try:
                node.wait(10)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
            log.close()
        self.addCleanup(stop)
        for _ in range(100):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % http,
                                            timeout=1) as r:
                    if r.status == 200:
                        return "127.0.0.1:%d" % zmq_port
            except OSError:
                time.sleep(0.1)
        self.fail("the node did not start: " + open(os.path.join(data, "node.log")).read())

    def test_push_infer_list_promote_rollback_and_status(self):
        with Client(self.start_node()) as shoal:
            first = shoal.push("acme/bot", self.v1, note="first")
            self.assertEqual(first.version, 1)
            self.assertEqual(len(first.sha256), 64)
            self.assertIn("production", first.labels)
            with open(self.v2, "rb") as f:
                second = shoal.push("acme/bot", f.read())  # bytes work as well as a path
            self.assertEqual(second.version, 2)

            rows = shoal.infer("acme/bot", ["where is my parcel", "cancel my order"], top_k=2)
            self.assertEqual(len(rows), 2)
            for row in rows:
                self.assertEqual(len(row), 2)
                self.assertTrue(row[0].label)
                self.assertGreaterEqual(row[0].score, row[1].score)
            # The same answer as the fasttext tool gives for version 1 (production).
            oracle = subprocess.run([FASTTEXT, "predict", self.v1, "-", "1"], input=b"where is my parcel\n",
                                    capture_output=True, check=True).stdout.decode().strip()
            self.assertEqual("__label__" + rows[0][0].label, oracle)

            info = shoal.list("acme/bot")
            self.assertEqual([s.version for s in info.snapshots], [1, 2])
            self.assertEqual(info.snapshots[0].note, "first")
            self.assertEqual([m.model for m in shoal.models()], ["acme/bot"])

            moved = shoal.promote("acme/bot", 2)
            self.assertEqual((moved.label, getattr(moved, "from"), moved.to), ("production", 1, 2))
            self.assertEqual(shoal.infer("acme/bot", "hello", version=0)[0][0].label,
                             shoal.infer("acme/bot", "hello", version=2)[0][0].label)
            back = shoal.rollback("acme/bot")
            self.assertEqual((getattr(back, "from"), back.to), (2, 1))

            status = shoal.status()
            self.assertEqual((status.models, status.snapshots), (1, 2))
            members = shoal.cluster_status()
            self.assertEqual(len(members), 1)
            self.assertTrue(members[0].is_self)
            self.assertEqual(members[0].status, "alive")

    def test_errors_are_shoal_errors_with_the_node_s_reason(self):
        with Client(self.start_node()) as shoal:
            with self.assertRaises(ShoalError) as e:
                shoal.infer("acme/nope", ["hi"])
            self.assertEqual(e.exception.code, "NOT_FOUND")
            self.assertIn("acme/nope", e.exception.message)
            with self.assertRaises(ShoalError) as e:
                shoal.push("acme/bot", b"not a model")
            self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
            with self.assertRaises(ShoalError) as e:
                shoal.promote("acme/bot", 7)
            self.assertIn(e.exception.code, ("NOT_FOUND", "FAILED_PRECONDITION"))
            # The client still works after errors.
            self.assertEqual(shoal.push("acme/bot", self.v1).version, 1)
        with Client("127.0.0.1:%d" % free_port(), timeout=0.3) as nobody:
            with self.assertRaises(ShoalError) as e:
                nobody.status()
            self.assertEqual(e.exception.code, "TIMEOUT")

    def test_keys_reach_only_their_tenant(self):
        keys = os.path.join(self.tmp, "keys")
        with open(keys, "w") as f:
            f.write("pyadminkey-0123456789 admin\npyacmekey-01234567890 acme\n")
        node = self.start_node("--keys-file", keys)
        with Client(node, key="pyadminkey-0123456789") as admin:
            admin.push("acme/bot", self.v1)
            admin.push("globex/bot", self.v1)
        with Client(node, key="pyacmekey-01234567890") as acme:
            self.assertEqual([m.model for m in acme.models()], ["acme/bot"])
            self.assertTrue(acme.infer("acme/bot", "hello")[0][0].label)
            with self.assertRaises(ShoalError) as e:
                acme.infer("globex/bot", "hello")
            self.assertEqual(e.exception.code, "NOT_FOUND")
        with Client(node, key="") as anonymous:
            with self.assertRaises(ShoalError) as e:
                anonymous.models()
            self.assertEqual(e.exception.code, "UNAUTHENTICATED")


if __name__ == "__main__":
    unittest.main()
