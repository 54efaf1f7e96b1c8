"""KServe V2 clients that were not written for Shoal, against real nodes: plain `requests` sending
the HTTP shapes tritonclient and KServe's client send (JSON, nested data, the binary tensor data
extension both ways), and grpcio with stubs generated from the protocol's proto (protoc and Debian's
grpc_python_plugin, at test time). Models are built and exported here with PyTorch, whose own
outputs are the oracle.

Run by ctest (v2_clients_test) with SHOAL_BIN, FASTTEXT_BIN and SHOAL_SOURCE_DIR set."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc
import numpy as np
import onnx
import onnx.helper
import requests
import torch

SHOAL = os.environ.get("SHOAL_BIN", "build/shoal")
FASTTEXT = os.environ.get("FASTTEXT_BIN", "fasttext")
SOURCE = os.environ.get("SHOAL_SOURCE_DIR", ".")
TOL = 1e-5

VOCAB = ["<unk>", "where", "is", "my", "order", "cancel", "it", "hello", "refund", "money",
         "please", "the", "parcel"]
LABELS = ["order_status", "cancel", "greet", "refund"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ranker(torch.nn.Module):
    """A small MLP with two outputs, so that asking for outputs selects and orders them."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(),
                                        torch.nn.Linear(32, 5))

    def forward(self, x):
        logits = self.body(x)
        return logits, torch.softmax(logits, dim=-1)


class Bag(torch.nn.Module):
    """An embedding-bag intent classifier over token ids."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(len(VOCAB), 16)
        self.out = torch.nn.Linear(16, len(LABELS))

    def forward(self, ids):
        return self.out(self.emb(ids).mean(dim=1))


def start_node(tmp, name, extra=()):
    ports = {k: free_port() for k in ("http", "zmq", "grpc", "cluster")}
    data = os.path.join(tmp, name)
    os.makedirs(data)
    log = open(os.path.join(tmp, name + ".log"), "wb")
    proc = subprocess.Popen([SHOAL, "node", "--data-dir", data, "--http-port", str(ports["http"]),
                             "--zmq-port", str(ports["zmq"]), "--grpc-port", str(ports["grpc"]),
                             "--cluster-port", str(ports["cluster"]), "--name", name] + list(extra),
                            stdout=log, stderr=log)
    log.close()  # the node has its own descriptor
    for _ in range(200):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % ports["http"],
                                        timeout=1) as r:
                if r.status == 200:
                    return proc, ports
        except OSError:
            time.sleep(0.1)
    proc.kill()
    with open(os.path.join(tmp, name + ".log")) as f:
        raise RuntimeError("node did not start: " + f.read())


def stop_node(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cli(ports, *args, key="admin-key-0123456789"):
    return subprocess.run([SHOAL] + list(args) + ["--node", "127.0.0.1:%d" % ports["zmq"],
                                                   "--key", key],
                          capture_output=True, text=True, timeout=60)


def grpc_stubs(tmp):
    """Generates the V2 gRPC stubs from the protocol's proto with protoc and grpc_python_plugin."""
    out = os.path.join(tmp, "stubs")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", os.path.join(SOURCE, "proto"), "--python_out=" + out,
                    "--grpc_python_out=" + out,
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    os.path.join(SOURCE, "proto", "v2_grpc.proto")], check=True)
    sys.path.insert(0, out)
    import v2_grpc_pb2
    import v2_grpc_pb2_grpc
    return v2_grpc_pb2, v2_grpc_pb2_grpc


class V2ClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="shoal-v2-")
        torch.manual_seed(7)
        cls.ranker = Ranker().eval()
        cls.ranker_file = os.path.join(cls.tmp, "ranker.onnx")
        torch.onnx.export(cls.ranker, torch.randn(2, 20), cls.ranker_file, input_names=["x"],
                          output_names=["logits", "probs"], opset_version=17,
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"},
                                        "probs": {0: "batch"}})
        cls.bag = Bag().eval()
        cls.bag_file = os.path.join(cls.tmp, "bag.onnx")
        torch.onnx.export(cls.bag, torch.zeros(1, 3, dtype=torch.long), cls.bag_file,
                          input_names=["ids"], output_names=["logits"], opset_version=13,
                          dynamic_axes={"ids": {0: "batch", 1: "seq"}})
        for name, lines in (("vocab.txt", VOCAB), ("labels.txt", LABELS)):
            with open(os.path.join(cls.tmp, name), "w") as f:
                f.write("\n".join(lines) + "\n")
        # A model with an operator Shoal does not run: refused at push, nothing stored.
        lstm = onnx.helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2)
        graph = onnx.helper.make_graph(
            [lstm], "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 2]),
             onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [1, 8, 2]),
             onnx.helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, [1, 8, 2])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
        cls.lstm_file = os.path.join(cls.tmp, "lstm.onnx")
        onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]),
                  cls.lstm_file)
        cls.fasttext_file = os.path.join(cls.tmp, "ft")
        subprocess.run([FASTTEXT, "supervised", "-input",
                        os.path.join(SOURCE, "examples", "intents-v1.txt"), "-output",
                        cls.fasttext_file, "-epoch", "25", "-lr", "0.5", "-dim", "16", "-bucket",
                        "20000", "-verbose", "0"], check=True)
        cls.fasttext_file += ".bin"
        keys = os.path.join(cls.tmp, "keys")
        with open(keys, "w") as f:
            f.write("admin-key-0123456789 admin\nacme-key-0123456789 acme\nother-key-0123456789 other\n")
        cls.node, cls.ports = start_node(cls.tmp, "n1", ["--keys-file", keys])
        cls.http = "http://127.0.0.1:%d" % cls.ports["http"]
        for args in (("acme/ranker", cls.ranker_file), ("acme/bot", cls.fasttext_file)):
            r = cli(cls.ports, "snapshot", "push", *args)
            assert r.returncode == 0, r.stderr
        r = cli(cls.ports, "snapshot", "push", "acme/pt", cls.bag_file, "--tokenizer", "whitespace",
                "--vocab", os.path.join(cls.tmp, "vocab.txt"), "--labels",
                os.path.join(cls.tmp, "labels.txt"))
        assert r.returncode == 0, r.stderr
        cls.pb, cls.rpc = grpc_stubs(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        stop_node(cls.node)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------------------------

    def post(self, path, body, key="acme-key-0123456789", headers=None):
        h = {"Authorization": "Bearer " + key}
        h.update(headers or {})
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.http + path, data=data, headers=h, timeout=30)

    def get(self, path, key="acme-key-0123456789"):
        return requests.get(self.http + path, headers={"Authorization": "Bearer " + key},
                            timeout=30)

    def torch_ranker(self, x):
        with torch.no_grad():
            logits, probs = self.ranker(torch.from_numpy(x))
        return logits.numpy(), probs.numpy()

    def stub(self):
        channel = grpc.insecure_channel("127.0.0.1:%d" % self.ports["grpc"])
        self.addCleanup(channel.close)
        return self.rpc.GRPCInferenceServiceStub(channel)

    # ---- HTTP -------------------------------------------------------------------------------

    def test_http_metadata_shows_the_models_tensors(self):
        meta = self.get("/v2/models/acme/ranker").json()
        self.assertEqual(meta["platform"], "onnx")
        self.assertEqual(meta["inputs"], [{"name": "x", "datatype": "FP32", "shape": [-1, 20]}])
        self.assertEqual([o["name"] for o in meta["outputs"]], ["logits", "probs"])
        self.assertEqual(meta["outputs"][1]["shape"], [-1, 5])
        # The ONNX text model looks like a fastText one to its clients.
        text = self.get("/v2/models/acme%2Fpt").json()
        self.assertEqual(text["inputs"], [{"name": "text", "datatype": "BYTES", "shape": [-1]}])
        self.assertEqual(self.get("/v2").json()["extensions"],
                         ["binary_tensor_data", "model_repository", "statistics"])

    def test_http_json_tensors_match_pytorch_for_every_batch_size(self):
        rng = np.random.default_rng(1)
        for batch in (1, 2, 7, 32, 64):
            x = rng.standard_normal((batch, 20)).astype(np.float32)
            body = {"id": "b%d" % batch,
                    "inputs": [{"name": "x", "datatype": "FP32", "shape": [batch, 20],
                                "data": x.tolist()}]}  # nested, as numpy's tolist() gives it
            r = self.post("/v2/models/acme/ranker/infer", body)
            self.assertEqual(r.status_code, 200, r.text)
            answer = r.json()
            self.assertEqual(answer["id"], "b%d" % batch)
            logits, probs = self.torch_ranker(x)
            got = {o["name"]: np.array(o["data"], dtype=np.float32).reshape(o["shape"])
                   for o in answer["outputs"]}
            self.assertEqual([o["name"] for o in answer["outputs"]], ["logits", "probs"])
            self.assertLessEqual(np.abs(got["logits"] - logits).max(), TOL)
            self.assertLessEqual(np.abs(got["probs"] - probs).max(), TOL)
        # outputs select and order
        r = self.post("/v2/models/acme/ranker/infer",
                      {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 20],
                                   "data": [0.5] * 20}],
                       "outputs": [{"name": "probs"}]})
        self.assertEqual([o["name"] for o in r.json()["outputs"]], ["probs"])

    def test_concurrent_tensor_requests_each_get_their_own_answer(self):
        # Requests read in one round are stacked into one run (micro-batching); each must still
        # get exactly its own rows.
        import concurrent.futures
        rng = np.random.default_rng(9)
        xs = [rng.standard_normal((1 + i % 4, 20)).astype(np.float32) for i in range(48)]

        def ask(x):
            body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                "data": x.ravel().tolist()}], "outputs": [{"name": "probs"}]}
            return self.post("/v2/models/acme/ranker/infer", body)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, xs))
        for x, r in zip(xs, answers):
            self.assertEqual(r.status_code, 200, r.text)
            out = r.json()["outputs"][0]
            self.assertEqual(out["shape"], [x.shape[0], 5])
            got = np.array(out["data"], dtype=np.float32).reshape(out["shape"])
            self.assertLessEqual(np.abs(got - self.torch_ranker(x)[1]).max(), TOL)

    def test_http_binary_tensor_data_both_ways(self):
        # What tritonclient.http sends for InferInput.set_data_from_numpy(binary_data=True) and
        # InferRequestedOutput(binary_data=True).
        x = np.random.default_rng(2).standard_normal((3, 20)).astype(np.float32)
        header = json.dumps({
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 20],
                        "parameters": {"binary_data_size": x.nbytes}}],
            "outputs": [{"name": "probs", "parameters": {"binary_data": True}},
                        {"name": "logits", "parameters": {"binary_data": False}}]}).encode()
        r = self.post("/v2/models/acme/ranker/infer", header + x.tobytes(),
                      headers={"Inference-Header-Content-Length": str(len(header)),
                               "Content-Type": "application/octet-stream"})
        self.assertEqual(r.status_code, 200, r.text)
        n = int(r.headers["Inference-Header-Content-Length"])
        head = json.loads(r.content[:n])
        logits, probs = self.torch_ranker(x)
        self.assertEqual(head["outputs"][0]["name"], "probs")
        size = head["outputs"][0]["parameters"]["binary_data_size"]
        got = np.frombuffer(r.content[n:n + size], dtype=np.float32).reshape(3, 5)
        self.assertLessEqual(np.abs(got - probs).max(), TOL)
        self.assertEqual(len(r.content), n + size)
        json_logits = np.array(head["outputs"][1]["data"], dtype=np.float32).reshape(3, 5)
        self.assertLessEqual(np.abs(json_logits - logits).max(), TOL)

    def test_http_texts_to_fasttext_and_to_an_onnx_text_model_alike(self):
        for model in ("acme/bot", "acme/pt"):
            # Triton-style [B,1] BYTES, nested, and the binary form of the same texts.
            body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1],
                                "data": [["where is my order"], ["cancel it please"]]}],
                    "parameters": {"top_k": 2}}
            r = self.post("/v2/models/%s/infer" % model, body)
            self.assertEqual(r.status_code, 200, r.text)
            outs = {o["name"]: o for o in r.json()["outputs"]}
            self.assertEqual(outs["labels"]["shape"], [2, 2])
            texts = [b"where is my order", b"cancel it please"]
            raw = b"".join(struct.pack("<I", len(t)) + t for t in texts)
            header = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                             "parameters": {"binary_data_size": len(raw)}}],
                                 "parameters": {"top_k": 2}}).encode()
            b = self.post("/v2/models/%s/infer" % model, header + raw,
                          headers={"Inference-Header-Content-Length": str(len(header))})
            self.assertEqual(b.status_code, 200, b.text)
            self.assertEqual(b.json()["outputs"], r.json()["outputs"])
        # The ONNX text model's answer is PyTorch's softmax over the same token ids.
        ids = torch.tensor([[VOCAB.index(w) for w in "where is my order".split()]])
        with torch.no_grad():
            p = torch.softmax(self.bag(ids), dim=-1)[0].numpy()
        r = self.post("/v2/models/acme/pt/infer",
                      {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                   "data": ["Where is my order"]}],
                       "parameters": {"top_k": 4}}).json()
        labels = r["outputs"][0]["data"]
        scores = r["outputs"][1]["data"]
        for label, score in zip(labels, scores):
            self.assertLessEqual(abs(score - p[LABELS.index(label)]), TOL)
        self.assertEqual(labels[0], LABELS[int(p.argmax())])
        # and the CLI answers it as it answers fastText
        out = cli(self.ports, "infer", "acme/pt", "where is my order", key="acme-key-0123456789")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith(LABELS[int(p.argmax())] + "\t"), out.stdout)

    def test_an_onnx_text_model_passes_through_the_validation_gate_like_fasttext(self):
        # Labelled examples in fastText's format; the model's labels come from its labels file.
        examples = [("order_status", "where is my order"), ("cancel", "cancel it please"),
                    ("greet", "hello"), ("refund", "refund my money")]
        path = os.path.join(self.tmp, "valid.txt")
        with open(path, "w") as f:
            for label, text in examples * 5:
                f.write("__label__%s %s\n" % (label, text))
        r = cli(self.ports, "validation", "set", "acme/pt", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(self.ports, "snapshot", "validate", "acme/pt", "1", "--json")
        self.assertIn(r.returncode, (0, 1), r.stderr)
        report = json.loads(r.stdout)
        # PyTorch's own accuracy on the same examples, tokenized the same way.
        right = 0
        for label, text in examples:
            ids = torch.tensor([[VOCAB.index(w) if w in VOCAB else 0 for w in text.split()]])
            with torch.no_grad():
                right += LABELS[int(self.bag(ids).argmax())] == label
        self.assertEqual(report["figures"]["candidate"]["examples"], 20)
        self.assertAlmostEqual(report["figures"]["candidate"]["accuracy"], right / len(examples),
                               places=6)
        # A tensor model cannot be judged by texts: the gate says so.
        r = cli(self.ports, "validation", "set", "acme/ranker", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli(self.ports, "snapshot", "validate", "acme/ranker", "1")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("tensor model", r.stderr)

    def test_http_bad_requests_are_4xx_with_a_reason(self):
        cases = [
            ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 19], "data": [0] * 19}]},
             "the model takes FP32 [-1,20], got FP32 [1,19]"),
            ({"inputs": [{"name": "x", "datatype": "INT64", "shape": [1, 20], "data": [0] * 20}]},
             "the model takes FP32"),
            ({"inputs": [{"name": "x", "datatype": "FP16", "shape": [1, 20], "data": [0] * 20}]},
             "FP16"),
            ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 20], "data": [0] * 20}],
              "outputs": [{"name": "nope"}]}, "unknown output 'nope'"),
            ({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]},
             "takes tensors: x (FP32 [-1,20])"),
        ]
        for body, part in cases:
            r = self.post("/v2/models/acme/ranker/infer", body)
            self.assertEqual(r.status_code, 400, r.text)
            self.assertIn(part, r.json()["error"])
        r = self.post("/v2/models/acme/bot/infer",
                      {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]})
        self.assertEqual(r.status_code, 400)
        self.assertIn("answers texts", r.json()["error"])
        r = self.post("/v2/models/acme/ranker/infer", b'{"inputs":[]}xx',
                      headers={"Inference-Header-Content-Length": "13"})
        self.assertEqual(r.status_code, 400)

    def test_repository_index_load_unload_and_statistics(self):
        index = self.post("/v2/repository/index", b"").json()
        self.assertEqual(sorted(m["name"] for m in index), ["acme/bot", "acme/pt", "acme/ranker"])
        self.assertTrue(all(m["state"] == "READY" for m in index))
        self.assertEqual(self.post("/v2/repository/index", b"", key="other-key-0123456789").json(), [])
        self.assertEqual(self.post("/v2/repository/models/acme/ranker/load", b"").status_code, 200)
        self.assertEqual(self.post("/v2/repository/models/acme/ranker/load", b"",
                                   key="other-key-0123456789").status_code, 404)
        unload = self.post("/v2/repository/models/acme/ranker/unload", b"")
        self.assertEqual(unload.status_code, 400)
        self.assertIn("least recently used", unload.json()["error"])
        before = self.get("/v2/models/acme/ranker/stats").json()["model_stats"][0]
        for _ in range(3):
            self.post("/v2/models/acme/ranker/infer",
                      {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 20],
                                   "data": [0.1] * 20}]})
        after = self.get("/v2/models/acme/ranker/stats").json()["model_stats"][0]
        self.assertEqual(after["inference_count"], before["inference_count"] + 3)
        self.assertEqual(after["inference_stats"]["success"]["count"],
                         before["inference_stats"]["success"]["count"] + 3)
        self.assertEqual(self.get("/v2/models/acme/ranker/stats", key="other-key-0123456789").status_code, 404)

    def test_unsupported_and_broken_onnx_files_are_refused_and_nothing_is_stored(self):
        r = cli(self.ports, "snapshot", "push", "acme/ranker", self.lstm_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unsupported ONNX operators: LSTM", r.stderr)
        with open(self.ranker_file, "rb") as f:
            truncated = f.read()[:200]
        path = os.path.join(self.tmp, "truncated.onnx")
        with open(path, "wb") as f:
            f.write(truncated)
        r = cli(self.ports, "snapshot", "push", "acme/ranker", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ONNX", r.stderr)
        versions = self.get("/v2/models/acme/ranker").json()["versions"]
        self.assertEqual(versions, ["1"])

    # ---- gRPC -------------------------------------------------------------------------------

    def test_grpc_health_metadata_and_infer(self):
        pb, s = self.pb, self.stub()
        auth = (("authorization", "Bearer acme-key-0123456789"),)
        self.assertTrue(s.ServerLive(pb.ServerLiveRequest()).live)
        self.assertTrue(s.ServerReady(pb.ServerReadyRequest()).ready)
        self.assertEqual(s.ServerMetadata(pb.ServerMetadataRequest()).name, "shoal")
        self.assertTrue(s.ModelReady(pb.ModelReadyRequest(name="acme/ranker"), metadata=auth).ready)
        meta = s.ModelMetadata(pb.ModelMetadataRequest(name="acme/ranker"), metadata=auth)
        self.assertEqual(meta.platform, "onnx")
        self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in meta.inputs],
                         [("x", "FP32", [-1, 20])])

        x = np.random.default_rng(3).standard_normal((4, 20)).astype(np.float32)
        logits, probs = self.torch_ranker(x)
        # typed contents
        req = pb.ModelInferRequest(model_name="acme/ranker", id="g1")
        t = req.inputs.add(name="x", datatype="FP32", shape=[4, 20])
        t.contents.fp32_contents.extend(x.ravel().tolist())
        req.outputs.add(name="probs")
        r = s.ModelInfer(req, metadata=auth)
        self.assertEqual((r.model_name, r.model_version, r.id), ("acme/ranker", "1", "g1"))
        self.assertEqual([o.name for o in r.outputs], ["probs"])
        got = np.frombuffer(r.raw_output_contents[0], dtype=np.float32).reshape(4, 5)
        self.assertLessEqual(np.abs(got - probs).max(), TOL)
        # raw_input_contents, what tritonclient.grpc sends
        raw = pb.ModelInferRequest(model_name="acme/ranker", model_version="1")
        raw.inputs.add(name="x", datatype="FP32", shape=[4, 20])
        raw.raw_input_contents.append(x.tobytes())
        r = s.ModelInfer(raw, metadata=auth)
        self.assertEqual([o.name for o in r.outputs], ["logits", "probs"])
        got = np.frombuffer(r.raw_output_contents[0], dtype=np.float32).reshape(4, 5)
        self.assertLessEqual(np.abs(got - logits).max(), TOL)

        # texts to fastText, with top_k
        text = pb.ModelInferRequest(model_name="acme/bot")
        ti = text.inputs.add(name="text", datatype="BYTES", shape=[2])
        ti.contents.bytes_contents.extend([b"where is my order", b"i want a refund"])
        text.parameters["top_k"].int64_param = 3
        r = s.ModelInfer(text, metadata=auth)
        self.assertEqual([(o.name, list(o.shape)) for o in r.outputs],
                         [("labels", [2, 3]), ("scores", [2, 3])])
        scores = np.frombuffer(r.raw_output_contents[1], dtype=np.float32)
        self.assertTrue(np.all(scores > 0) and np.all(scores <= 1.0001))
        first = struct.unpack("<I", r.raw_output_contents[0][:4])[0]
        http = self.post("/v2/models/acme/bot/infer",
                         {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                      "data": ["where is my order", "i want a refund"]}],
                          "parameters": {"top_k": 3}}).json()
        self.assertEqual(r.raw_output_contents[0][4:4 + first].decode(),
                         http["outputs"][0]["data"][0])

    def test_grpc_errors_carry_codes_and_reasons(self):
        pb, s = self.pb, self.stub()
        auth = (("authorization", "Bearer acme-key-0123456789"),)
        good = pb.ModelInferRequest(model_name="acme/ranker")
        good.inputs.add(name="x", datatype="FP32", shape=[1, 20]).contents.fp32_contents.extend(
            [0.0] * 20)
        cases = [
            (pb.ModelInferRequest(model_name="acme/nope", inputs=good.inputs), auth,
             grpc.StatusCode.NOT_FOUND, "no model acme/nope"),
            (good, (), grpc.StatusCode.UNAUTHENTICATED, "key"),
            (good, (("authorization", "Bearer other-key-0123456789"),), grpc.StatusCode.NOT_FOUND, ""),
            (good, (("authorization", "Basic abc"),), grpc.StatusCode.UNAUTHENTICATED, "Bearer"),
        ]
        bad_shape = pb.ModelInferRequest(model_name="acme/ranker")
        bad_shape.inputs.add(name="x", datatype="FP32", shape=[1, 3]).contents.fp32_contents.extend(
            [0.0] * 3)
        cases.append((bad_shape, auth, grpc.StatusCode.INVALID_ARGUMENT, "FP32 [-1,20]"))
        short = pb.ModelInferRequest(model_name="acme/ranker")
        short.inputs.add(name="x", datatype="FP32", shape=[2, 20])
        short.raw_input_contents.append(b"\0" * 12)
        cases.append((short, auth, grpc.StatusCode.INVALID_ARGUMENT, "needs 160 bytes"))
        for req, meta, code, part in cases:
            with self.assertRaises(grpc.RpcError) as caught:
                s.ModelInfer(req, metadata=meta)
            self.assertEqual(caught.exception.code(), code, caught.exception.details())
            self.assertIn(part, caught.exception.details())


class V2ClusterTest(unittest.TestCase):
    """A tensor request sent to a node that holds no copy is forwarded to the one that does."""

    def test_a_forwarded_tensor_request_is_answered_as_the_holder_answers_it(self):
        tmp = tempfile.mkdtemp(prefix="shoal-v2c-")
        self.addCleanup(shutil.rmtree, tmp, True)
        torch.manual_seed(11)
        ranker = Ranker().eval()
        path = os.path.join(tmp, "ranker.onnx")
        torch.onnx.export(ranker, torch.randn(2, 20), path, input_names=["x"],
                          output_names=["logits", "probs"], opset_version=13,
                          dynamic_axes={"x": {0: "batch"}})
        flags = ["--replication-factor", "1", "--follow-traffic-rps", "0"]
        n1, p1 = start_node(tmp, "n1", flags)
        self.addCleanup(stop_node, n1)
        n2, p2 = start_node(tmp, "n2", flags + ["--seeds", "127.0.0.1:%d" % p1["cluster"]])
        self.addCleanup(stop_node, n2)
        nodes = {"n1": p1, "n2": p2}

        def listing():
            r = subprocess.run([SHOAL, "snapshot", "list", "acme/ranker", "--json", "--node",
                                "127.0.0.1:%d" % p1["zmq"]], capture_output=True, text=True)
            return json.loads(r.stdout) if r.returncode == 0 else None

        def members_alive():
            r = subprocess.run([SHOAL, "cluster", "status", "--json", "--node",
                                "127.0.0.1:%d" % p1["zmq"]], capture_output=True, text=True)
            return r.returncode == 0 and r.stdout.count('"alive"') >= 2

        deadline = time.time() + 20
        while not members_alive() and time.time() < deadline:
            time.sleep(0.2)
        push = subprocess.run([SHOAL, "snapshot", "push", "acme/ranker", path, "--node",
                               "127.0.0.1:%d" % p1["zmq"]], capture_output=True, text=True)
        self.assertEqual(push.returncode, 0, push.stderr)
        holders = []
        deadline = time.time() + 20
        while time.time() < deadline:
            entry = listing()
            holders = entry["snapshots"][0]["holders"] if entry else []
            if len(holders) == 1:
                break
            time.sleep(0.2)
        self.assertEqual(len(holders), 1, holders)
        holder = holders[0]
        front = "n2" if holder == "n1" else "n1"
        x = np.random.default_rng(5).standard_normal((2, 20)).astype(np.float32)
        with torch.no_grad():
            _, probs = ranker(torch.from_numpy(x))
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 20],
                            "data": x.ravel().tolist()}], "outputs": [{"name": "probs"}]}
        answers = {}
        for name in (holder, front):
            deadline = time.time() + 20
            while True:
                r = requests.post("http://127.0.0.1:%d/v2/models/acme/ranker/infer"
                                  % nodes[name]["http"], json=body, timeout=10)
                if r.status_code == 200 or time.time() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(r.status_code, 200, r.text)
            answers[name] = r.json()
            got = np.array(r.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, 5)
            self.assertLessEqual(np.abs(got - probs.numpy()).max(), TOL)
        self.assertEqual(answers[front], answers[holder])
        metrics = requests.get("http://127.0.0.1:%d/metrics" % nodes[front]["http"],
                               timeout=10).text
        forwarded = [float(line.split()[1]) for line in metrics.splitlines()
                     if line.startswith("shoal_requests_forwarded_total ")]
        self.assertEqual(forwarded, [1.0], "the front node forwarded the request to " + holder)


if __name__ == "__main__":
    unittest.main()
