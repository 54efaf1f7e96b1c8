#!/usr/bin/python3
"""Builds the ONNX models onnx_test runs, with PyTorch, and writes PyTorch's outputs as the oracle.

Usage: /usr/bin/python3 make_models.py OUT_DIR

Writes into OUT_DIR:
  <model>.onnx           the exported models (and the hand-built refusals, with onnx.helper)
  <case>.<name>.bin      inputs and PyTorch's outputs, raw little-endian (float32 or int64)
  manifest.json          {"cases": [{"model", "batch", "inputs": [...], "outputs": [...]}],
                          "texts": {...}, "refusals": {...}}
Each tensor entry is {"name", "type": "FP32"|"INT64", "shape", "file"}. One process builds
everything (importing torch is the slow part). Deterministic: fixed seeds.
"""
import json
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1]
BATCHES = [1, 2, 7, 32, 64]
manifest = {"cases": [], "texts": {}, "refusals": {}}


def path(name):
    return os.path.join(OUT, name)


def save(name, array):
    array = np.ascontiguousarray(array)
    array.astype(array.dtype.newbyteorder("<")).tofile(path(name))


def type_name(array):
    return {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64"}[array.dtype]


def export(module, name, args, input_names, output_names, dynamic_axes, opset):
    module.eval()
    torch.onnx.export(module, args, path(name), input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes, opset_version=opset,
                      do_constant_folding=True)


def add_cases(module, model_file, make_inputs, input_names, output_names):
    """Runs `module` on inputs for every batch size and records inputs and outputs."""
    for batch in BATCHES:
        inputs = make_inputs(batch)
        with torch.no_grad():
            outs = module(*[torch.from_numpy(a) for a in inputs])
        if not isinstance(outs, tuple):
            outs = (outs,)
        case = f"{model_file[:-5]}.b{batch}"
        entry = {"model": model_file, "batch": batch, "inputs": [], "outputs": []}
        for n, a in zip(input_names, inputs):
            save(f"{case}.{n}.bin", a)
            entry["inputs"].append({"name": n, "type": type_name(a), "shape": list(a.shape),
                                    "file": f"{case}.{n}.bin"})
        for n, t in zip(output_names, outs):
            a = t.numpy()
            save(f"{case}.{n}.out.bin", a)
            entry["outputs"].append({"name": n, "type": type_name(a), "shape": list(a.shape),
                                     "file": f"{case}.{n}.out.bin"})
        manifest["cases"].append(entry)


# ---- the models ---------------------------------------------------------------------------------

class mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(300, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 20))

    def forward(self, x):
        return self.net(x)


class bag(nn.Module):
    """An embedding-bag text classifier: mean of the token embeddings, then one linear layer."""
    def __init__(self, vocab, dim, labels):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, labels)

    def forward(self, ids):
        return self.out(self.emb(ids).mean(dim=1))


class ln_gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(32, 64)
        self.norm = nn.LayerNorm(64)
        self.act = nn.GELU()
        self.b = nn.Linear(64, 10)

    def forward(self, x):
        return torch.softmax(self.b(self.act(self.norm(self.a(x)))), dim=-1)


class text_cnn(nn.Module):
    SEQ = 16

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(500, 32)
        self.conv = nn.Conv1d(32, 16, kernel_size=3, padding=1, stride=1, dilation=1)
        self.pool = nn.MaxPool1d(2)
        self.out = nn.Linear(16 * self.SEQ // 2, 6)

    def forward(self, ids):
        x = self.emb(ids).transpose(1, 2)
        x = self.pool(torch.relu(self.conv(x)))
        x = x.view(x.size(0), -1)
        return torch.log_softmax(self.out(x), dim=1)


class shapes(nn.Module):
    """Shape and elementwise operators: two inputs, two outputs."""
    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(10, 8))
        self.w = nn.Parameter(torch.randn(8, 8))

    def forward(self, x, ids):
        # x: [B, 6, 8] float, ids: [B, 4] int64
        e = self.table[ids]                                   # Gather: [B, 4, 8]
        y = torch.cat([x[:, 1:5, :], e], dim=1)              # Slice, Concat: [B, 8, 8]
        y = y.transpose(1, 2)                                 # Transpose: [B, 8, 8]
        s = torch.sigmoid(y) - torch.tanh(y) / 3.0            # Sigmoid, Tanh, Div, Sub
        s = nn.functional.leaky_relu(s, 0.1) @ self.w         # LeakyRelu, MatMul
        r = s.sum(dim=2, keepdim=False)                       # ReduceSum: [B, 8]
        m = s.max(dim=1, keepdim=True).values                 # ReduceMax: [B, 1, 8]
        m = m.squeeze(1).unsqueeze(2)                         # Squeeze, Unsqueeze: [B, 8, 1]
        flat = m.reshape(m.shape[0], -1)                      # Shape, Gather, Reshape: [B, 8]
        count = (ids > 4).to(torch.float32).sum(dim=1, keepdim=True)   # Greater, Cast
        return r * flat + count, (ids * 2 - 1)


torch.manual_seed(7)
rng = np.random.default_rng(7)

models = {"mlp": mlp(), "ln_gelu": ln_gelu(), "text_cnn": text_cnn(), "shapes": shapes(),
          "bag": bag(1000, 48, 5)}
for m in models.values():
    m.eval()

def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)

def ids(batch, seq, vocab):
    return rng.integers(0, vocab, size=(batch, seq)).astype(np.int64)

specs = {
    "mlp": ((lambda b: (randn(b, 300),)), ["x"], ["y"], {"x": {0: "batch"}, "y": {0: "batch"}},
            [11, 13, 17]),
    "bag": ((lambda b: (ids(b, 1 + b % 9, 1000),)), ["ids"], ["logits"],
            {"ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}, [11, 13, 17]),
    "ln_gelu": ((lambda b: (randn(b, 5, 32),)), ["x"], ["p"],
                {"x": {0: "batch"}, "p": {0: "batch"}}, [13, 17]),
    "text_cnn": ((lambda b: (ids(b, text_cnn.SEQ, 500),)), ["ids"], ["logp"],
                 {"ids": {0: "batch"}, "logp": {0: "batch"}}, [11, 13, 17]),
    "shapes": ((lambda b: (randn(b, 6, 8), ids(b, 4, 10))), ["x", "ids"], ["out", "ids2"],
               {"x": {0: "batch"}, "ids": {0: "batch"}, "out": {0: "batch"}, "ids2": {0: "batch"}},
               [11, 13, 17]),
}

for name, (make, ins, outs, dyn, opsets) in specs.items():
    example = tuple(torch.from_numpy(a) for a in make(2))
    for opset in opsets:
        file = f"{name}_op{opset}.onnx"
        export(models[name], file, example, ins, outs, dyn, opset)
        add_cases(models[name], file, make, ins, outs)



# ---- hand-built models (onnx.helper) with numpy oracles: semantics torch does not emit ------------

def hand_model(name, nodes, inputs, outputs, opset, initializers=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="shoal-test")
    m.ir_version = 8
    onnx.save(m, path(f"{name}.onnx"))


def add_numpy_cases(model_file, make_inputs, input_names, compute, output_names):
    for batch in BATCHES:
        inputs = make_inputs(batch)
        outs = compute(*inputs)
        case = f"{model_file[:-5]}.b{batch}"
        entry = {"model": model_file, "batch": batch, "inputs": [], "outputs": []}
        for n, a in zip(input_names, inputs):
            save(f"{case}.{n}.bin", a)
            entry["inputs"].append({"name": n, "type": type_name(a), "shape": list(a.shape),
                                    "file": f"{case}.{n}.bin"})
        for n, a in zip(output_names, outs):
            save(f"{case}.{n}.out.bin", a)
            entry["outputs"].append({"name": n, "type": type_name(a), "shape": list(a.shape),
                                     "file": f"{case}.{n}.out.bin"})
        manifest["cases"].append(entry)


F, I64 = TensorProto.FLOAT, TensorProto.INT64
const = lambda name, array: helper.make_node(
    "Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name + "_v"))

# Opset 18: ReduceMean and ReduceMax take axes as an input; a non-contiguous reduction.
hand_model("reduce18", [
    const("ax1", np.array([1], np.int64)),
    const("ax02", np.array([0, 2], np.int64)),
    helper.make_node("ReduceMean", ["x", "ax1"], ["m"], keepdims=0),
    helper.make_node("ReduceMax", ["x", "ax02"], ["n"], keepdims=1),
    helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
], [helper.make_tensor_value_info("x", F, ["batch", 3, 4])],
   [helper.make_tensor_value_info("m", F, ["batch", 4]),
    helper.make_tensor_value_info("n", F, [1, 3, 1]),
    helper.make_tensor_value_info("s", F, [])], 18)
add_numpy_cases("reduce18.onnx", lambda b: (randn(b, 3, 4),), ["x"],
                lambda x: (x.mean(axis=1), x.max(axis=(0, 2), keepdims=True),
                           np.array(x.astype(np.float64).sum(), np.float32)), ["m", "n", "s"])

# Opset 11: Softmax coerces to 2-D at its axis; Flatten, Expand, Where, Range, ConstantOfShape.
def softmax2d(x, axis):
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape).astype(np.float32)

hand_model("misc11", [
    helper.make_node("Softmax", ["x"], ["sm"], axis=1),
    helper.make_node("Flatten", ["x"], ["flat"], axis=1),                    # [B, 12]
    helper.make_node("Shape", ["flat"], ["shape"]),
    const("ramp", np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 12)),
    helper.make_node("Expand", ["ramp", "shape"], ["ramp_b"]),
    helper.make_node("Greater", ["flat", "ramp_b"], ["gt"]),
    helper.make_node("Where", ["gt", "flat", "ramp_b"], ["mx"]),
    const("r0", np.array(0, np.int64)), const("r1", np.array(12, np.int64)),
    const("r2", np.array(1, np.int64)),
    helper.make_node("Range", ["r0", "r1", "r2"], ["rng"]),
    helper.make_node("Cast", ["rng"], ["rngf"], to=F),
    helper.make_node("ConstantOfShape", ["shape"], ["half"],
                     value=helper.make_tensor("v", F, [1], [0.5])),
    helper.make_node("Add", ["mx", "rngf"], ["t"]),
    helper.make_node("Mul", ["t", "half"], ["out"]),
], [helper.make_tensor_value_info("x", F, ["batch", 3, 4])],
   [helper.make_tensor_value_info("sm", F, ["batch", 3, 4]),
    helper.make_tensor_value_info("out", F, ["batch", 12])], 11)
add_numpy_cases("misc11.onnx", lambda b: (randn(b, 3, 4),), ["x"],
                lambda x: (softmax2d(x, 1),
                           ((np.maximum(x.reshape(len(x), 12),
                                        np.linspace(-1, 1, 12, dtype=np.float32)) +
                             np.arange(12, dtype=np.float32)) * 0.5).astype(np.float32)),
                ["sm", "out"])

# Opset 17 with a Gelu node (ONNX's own Gelu is opset 20: ONNX Runtime refuses it at 17, so only
# numpy judges it), Dropout with its mask, Squeeze without axes, Identity.
hand_model("gelu_node", [
    helper.make_node("Gelu", ["x"], ["g"]),
    helper.make_node("Gelu", ["x"], ["t"], approximate="tanh"),
    helper.make_node("Dropout", ["t"], ["d", "mask"]),
    helper.make_node("Unsqueeze", ["d", "one"], ["u"]),
    helper.make_node("Squeeze", ["u"], ["sq"]),
    helper.make_node("Identity", ["sq"], ["out"]),
], [helper.make_tensor_value_info("x", F, ["batch", 5])],
   [helper.make_tensor_value_info("g", F, ["batch", 5]),
    helper.make_tensor_value_info("out", F, ["batch", 5])], 17,
   [numpy_helper.from_array(np.array([1], np.int64), "one")])
erf = np.vectorize(math.erf)
add_numpy_cases("gelu_node.onnx", lambda b: (randn(b + 1, 5),), ["x"],
                lambda x: ((0.5 * x * (1 + erf(x.astype(np.float64) / math.sqrt(2)))).astype(np.float32),
                           (0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                                   (x + 0.044715 * x.astype(np.float64) ** 3)))
                            ).astype(np.float32)),
                ["g", "out"])
for c in manifest["cases"]:
    if c["model"] == "gelu_node.onnx":
        c["ort"] = False

# ---- refusals ----------------------------------------------------------------------------------

def vi(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)

hand_model("unsupported", [
    helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2),
    helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"]),
    helper.make_node("Relu", ["x"], ["z"]),
], [vi("x", [1, 1, 2]), vi("w", [1, 8, 2]), vi("r", [1, 8, 2]), vi("boxes", [1, 1, 4]),
    vi("scores", [1, 1, 1])], [vi("y", None), vi("sel", None, I64), vi("z", [1, 1, 2])], 13)
hand_model("cycle", [
    helper.make_node("Add", ["x", "b"], ["a"], name="first"),
    helper.make_node("Relu", ["a"], ["b"], name="second"),
], [vi("x", [1, 2])], [vi("a", [1, 2])], 13)
hand_model("dangling", [helper.make_node("Add", ["x", "nowhere"], ["y"], name="adder")],
           [vi("x", [1, 2])], [vi("y", [1, 2])], 13)
def empty_tensor(name, dims):
    """A FLOAT initializer that claims `dims` and holds no data."""
    t = TensorProto()
    t.name = name
    t.data_type = F
    t.dims.extend(dims)
    return t


hand_model("huge_input", [helper.make_node("Gemm", ["x", "w"], ["y"])],
           [vi("x", [1, 1 << 40]), vi("w", [1 << 40, 2])], [vi("y", [1, 2])], 13)
hand_model("huge_init", [helper.make_node("MatMul", ["x", "w"], ["y"])],
           [vi("x", [1, 1 << 20])], [vi("y", [1, 1 << 20])], 13,
           [empty_tensor("w", [1 << 20, 1 << 20])])
hand_model("huge_plan", [helper.make_node("MatMul", ["x", "w"], ["y"]),
                         helper.make_node("Relu", ["y"], ["z"]),
                         helper.make_node("Add", ["y", "z"], ["q"])],
           [vi("x", [200000, 1])], [vi("q", [200000, 1000])], 13,
           [helper.make_tensor("w", F, [1, 1000], np.ones(1000, np.float32))])
bad_w = empty_tensor("w", [3, 4])
bad_w.float_data.extend([1.0] * 5)
hand_model("bad_init", [helper.make_node("Add", ["x", "w"], ["y"])],
           [vi("x", [3, 4])], [vi("y", [3, 4])], 13,
           [bad_w])
ext = empty_tensor("w", [2])
ext.data_location = TensorProto.EXTERNAL
ext.external_data.add(key="location", value="weights.bin")
hand_model("external", [helper.make_node("Add", ["x", "w"], ["y"])],
           [vi("x", [2])], [vi("y", [2])], 13, [ext])
hand_model("opset9", [helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])], 9)
hand_model("opset19", [helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])], 19)
dom = helper.make_node("FusedGemm", ["x", "x"], ["y"], domain="com.microsoft", name="fused")
hand_model("other_domain", [dom], [vi("x", [2, 2])], [vi("y", [2, 2])], 13)
conv2d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
export(conv2d, "conv2d.onnx", (torch.randn(1, 3, 8, 8),), ["x"], ["y"], {"x": {0: "batch"}}, 13)

# ---- text models: an embedding bag with a whitespace vocabulary and one with a WordPiece one ------

WS_VOCAB = ["<pad>", "<unk>", "hello", "world", "the", "cat", "sat", "on", "mat", "book", "a",
            "flight", "to", "paris", "please", "thanks", "bye", "hi", "weather", "today", "is",
            "it", "raining", "cancel", "my", "order", "where", "café", "naïve", "world!"]
WP_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "hello", "world", ",", "!", "?", ".", "play", "##ing",
            "##s", "##ed", "un", "##want", "##ed", "the", "cat", "book", "a", "flight", "to",
            "par", "##is", "please", "we", "##ather", "today", "it", "rain", "##y", "'", "s",
            "caf", "##é", "don", "t", "go"]
# "##ed" appears twice above: drop the duplicate so the vocabulary is valid.
WP_VOCAB = list(dict.fromkeys(WP_VOCAB))
LABELS = ["greet", "book_flight", "weather", "cancel"]
TEXTS = ["hello world", "Hello, world!", "the  cat\tsat on\nthe mat", "", "   ",
         "book a flight to Paris please", "unknown words here", "playing games", "unwanted!!",
         "x" * 150, "naïve café", "Weather today? it's rainy.", "HELLO\u00a0World\u3000hi",
         "don't go", "cancel my order" + " hello" * 300]


def ascii_lower(text):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


WHITESPACE = set(" \t\n\v\f\r\u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000") | \
    {chr(c) for c in range(0x2000, 0x200B)}


def split_ws(text):
    words, cur = [], ""
    for ch in text:
        if ch in WHITESPACE:
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def ids_whitespace(text, vocab, max_tokens=256):
    index = {t: i for i, t in enumerate(vocab)}
    ids = [index.get(w, index["<unk>"]) for w in split_ws(ascii_lower(text))]
    return (ids or [index["<unk>"]])[:max_tokens]


def is_punct(ch):
    c = ord(ch)
    return 33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96 or 123 <= c <= 126


def ids_wordpiece(text, vocab, max_tokens=256):
    index = {t: i for i, t in enumerate(vocab)}
    unk = index["[UNK]"]
    text = "".join(ch for ch in text if not ((ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127))
    ids = []
    for word in split_ws(ascii_lower(text)):
        pieces, cur = [], ""
        for ch in word:
            if is_punct(ch):
                if cur:
                    pieces.append(cur)
                pieces.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            pieces.append(cur)
        for w in pieces:
            if len(w) > 100:
                ids.append(unk)
                continue
            out, start, bad = [], 0, False
            while start < len(w):
                end, found = len(w), None
                while start < end:
                    sub = ("##" if start > 0 else "") + w[start:end]
                    if sub in index:
                        found = index[sub]
                        break
                    end -= 1
                if found is None:
                    bad = True
                    break
                out.append(found)
                start = end
            ids.extend([unk] if bad else out)
    return (ids or [unk])[:max_tokens]


for kind, vocab, tokenize in (("whitespace", WS_VOCAB, ids_whitespace),
                              ("wordpiece", WP_VOCAB, ids_wordpiece)):
    model = bag(len(vocab), 16, len(LABELS)).eval()
    file = f"text_{kind}.onnx"
    export(model, file, (torch.zeros(1, 3, dtype=torch.int64),), ["ids"], ["logits"],
           {"ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}, 13)
    with open(path(f"text_{kind}.vocab"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(path(f"text_{kind}.labels"), "w", encoding="utf-8") as f:
        f.write("\n".join(LABELS) + "\n")
    cases = []
    for text in TEXTS:
        ids = tokenize(text, vocab)
        with torch.no_grad():
            logits = model(torch.tensor([ids], dtype=torch.int64))
            p = torch.softmax(logits.double(), dim=1)[0].tolist()
        cases.append({"text": text, "ids": ids, "scores": p})
    manifest["texts"][kind] = {"model": file, "vocab": f"text_{kind}.vocab",
                               "labels": f"text_{kind}.labels", "cases": cases}

if len(sys.argv) > 2 and sys.argv[2] == "--ops":
    for f in sorted(os.listdir(OUT)):
        if f.endswith(".onnx"):
            m = onnx.load(path(f))
            print(f, sorted({n.op_type for n in m.graph.node}))

with open(path("manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
