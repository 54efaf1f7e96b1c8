#!/usr/bin/python3
"""ONNX models: Shoal's own kernels against ONNX Runtime, one thread each, same machine, same run.

Exports two models with PyTorch (opset 17, dynamic batch), as tests/onnx/make_models.py does:
  mlp  300 -> 256 -> 256 -> 20, ReLU (FP32 x [batch, 300])
  bag  nn.Embedding(20000, 64), mean over the sequence, Linear(64, 20) (INT64 ids [batch, 16])
and for each an Identity model of the same input (mlp_identity, bag_identity), with inputs for
batch 1 and 32 and PyTorch's outputs (both sides check their answers against them first).

Then alternates rounds (Shoal, ONNX Runtime, Shoal, ...) so drift on a shared machine hits both:
  Shoal         build-onnx/bench/onnx_bench: model::run() in process, each call timed
  ONNX Runtime  bench/onnx_ort.js: onnxruntime-node (tests/onnx's pinned version, from the cache
                onnx_test installs it into), intraOpNumThreads 1, interOpNumThreads 1, sequential,
                graphOptimizationLevel 'all'; the model and its Identity model called in turn
                in one loop, each call timed with process.hrtime.bigint()
Per round, each side gives its median and p99 per call; the report gives the median of the
rounds. ORT "corrected" is its median minus the Identity model's: the binding's own per-call cost
(N-API, the setImmediate each run() waits for) taken out, which is the stricter comparison for
Shoal; the ratio is stated against it, the raw one is shown too. Targets: Shoal <= 1.5x ONNX
Runtime's time at batch 1, <= 1.2x at batch 32. Also cold load: load_onnx of bytes in memory
against InferenceSession.create(bytes), and file to first answer on each side.

usage: /usr/bin/python3 bench/onnx_bench.py [--rounds 3] [--seconds 1] [--bin PATH] [--out FILE]
Needs torch and onnx (/usr/bin/python3), node and npm, and build-onnx/bench/onnx_bench
(cmake --build build-onnx --target onnx_bench). Writes bench/results/onnx.md.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

from benchlib import ROOT, log

ORT_VERSION = "1.31.1"
BATCHES = [1, 32]
SEQ = 16
OPSET = 17


class mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(300, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 20))

    def forward(self, x):
        return self.net(x)


class bag(nn.Module):
    """An embedding-bag text classifier: mean of the token embeddings, then one linear layer."""
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20000, 64)
        self.out = nn.Linear(64, 20)

    def forward(self, ids):
        return self.out(self.emb(ids).mean(dim=1))


class identity(nn.Module):
    def forward(self, x):
        return x.clone()  # torch writes one Identity node (a bare return would have no node)


class first_columns(nn.Module):
    """The input cut to the MLP's output shape [batch, 20]: a baseline whose answer is as small as
    the model's (Identity returns all 300 columns)."""
    def forward(self, x):
        return x[:, :20]


def save(path, array):
    np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tofile(path)


def export_models(out):
    """Writes the models, inputs and PyTorch's outputs into `out`; returns the cases file."""
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    # (name, model, input, type, inputs for a batch, baselines besides Identity)
    specs = [
        ("mlp", mlp(), "x", "FP32", lambda b: rng.standard_normal((b, 300)).astype(np.float32),
         [("mlp_slice", first_columns())]),
        ("bag", bag(), "ids", "INT64",
         lambda b: rng.integers(0, 20000, size=(b, SEQ)).astype(np.int64), []),
    ]
    lines = []
    for name, module, input_name, type_name, make, baselines in specs:
        inputs = {b: make(b) for b in BATCHES}
        for model_name, m in [(name, module), (name + "_identity", identity())] + baselines:
            m.eval()
            torch.onnx.export(m, (torch.from_numpy(inputs[1]),), os.path.join(out, model_name + ".onnx"),
                              input_names=[input_name], output_names=["y"],
                              dynamic_axes={input_name: {0: "batch"}, "y": {0: "batch"}},
                              opset_version=OPSET, do_constant_folding=True)
            for b in BATCHES:
                case = "%s.b%d" % (model_name, b)
                save(os.path.join(out, case + ".in.bin"), inputs[b])
                expected = "-"
                if type_name == "FP32" or model_name == name:
                    with torch.no_grad():
                        y = m(torch.from_numpy(inputs[b])).numpy()
                    if y.dtype == np.float32:
                        expected = case + ".out.bin"
                        save(os.path.join(out, expected), y)
                lines.append("\t".join([
                    "%s/b%d" % (model_name, b), model_name + ".onnx", input_name, type_name,
                    ",".join(str(d) for d in inputs[b].shape), case + ".in.bin", expected]))
    cases = os.path.join(out, "cases.tsv")
    with open(cases, "w") as f:
        f.write("\n".join(lines) + "\n")
    return cases


def ort_install():
    """Returns onnxruntime-node's directory in the cache onnx_test uses, installing it there (npm ci
    from tests/onnx's pinned package.json and lock file, no install script) when missing."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME", "/tmp"), ".cache")
    d = os.path.join(cache, "shoal-test", "onnxruntime-node-" + ORT_VERSION)
    marker = os.path.join(d, "node_modules", "onnxruntime-node", "package.json")
    if os.path.exists(marker) and json.load(open(marker))["version"] == ORT_VERSION:
        return d
    log("installing onnxruntime-node %s into %s ..." % (ORT_VERSION, d))
    tmp = "%s.tmp-%d" % (d, os.getpid())
    os.makedirs(tmp)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(ROOT, "tests", "onnx", f), tmp)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                   cwd=tmp, check=True)
    shutil.rmtree(d, ignore_errors=True)
    os.rename(tmp, d)
    return d


def run_shoal(binary, cases, seconds):
    # One thread: OpenBLAS (Shoal's sgemm) is held to the calling thread as ORT's intra-op pool is.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([binary, cases, "--seconds", str(seconds), "--benchmark_format=json"],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit("onnx_bench failed: " + r.stderr + r.stdout[-2000:])
    out = {"run": {}, "load": {}, "cold": {}}
    for b in json.loads(r.stdout)["benchmarks"]:
        # "run/mlp/b1/min_time:1.000/manual_time": the case is what comes before the options
        parts = [p for p in b["name"].split("/") if ":" not in p and p != "manual_time"]
        kind, name = parts[0], "/".join(parts[1:])
        out[kind][name] = {"p50_us": b["p50_us"], "p99_us": b["p99_us"], "calls": b["calls"]}
    return out


def run_ort(install, cases, seconds):
    r = subprocess.run(["node", os.path.join(ROOT, "bench", "onnx_ort.js"), install, cases,
                        str(seconds)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("onnx_ort.js failed: " + r.stderr)
    return json.loads(r.stdout)


def med(rounds, kind, name, field):
    return statistics.median(r[kind][name][field] for r in rounds)


def report(shoal, ort, args, loads, cpu):
    targets = {1: 1.5, 32: 1.2}
    lines = [
        "# ONNX models against ONNX Runtime (`bench/onnx_bench.py`)", "",
        "%s UTC; %s, %d cores (shared); %d rounds each, alternating, %.1f s per case per round; "
        "medians of the rounds' medians per call. load average before/after: %s / %s" % (
            datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), cpu, os.cpu_count(),
            args.rounds, args.seconds, loads[0], loads[1]), "",
        "| model | batch | Shoal µs | ORT µs raw | ORT Identity µs | ORT µs corrected | "
        "Shoal / ORT corrected | Shoal / ORT raw | target | met? | p99 µs Shoal / ORT raw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    summary = []
    for model in ("mlp", "bag"):
        for b in BATCHES:
            case = "%s/b%d" % (model, b)
            s = med(shoal, "run", case, "p50_us")
            raw = med(ort, "run", case, "p50_us")
            ident = med(ort, "run", case, "identity_p50_us")
            corrected = statistics.median(r["run"][case]["p50_us"] - r["run"][case]["identity_p50_us"]
                                          for r in ort)
            # The Identity model slower than the model itself: noise, nothing to correct with.
            ratio = s / corrected if corrected > 0 else None
            met = ratio is not None and ratio <= targets[b]
            lines.append("| %s | %d | %.2f | %.2f | %.2f | %.2f | %s | %.2fx | <= %.1fx | %s | "
                         "%.2f / %.2f |" % (
                             model, b, s, raw, ident, corrected,
                             "**%.2fx**" % ratio if ratio is not None else "n/a", s / raw,
                             targets[b], "yes" if met else "**no**",
                             med(shoal, "run", case, "p99_us"), med(ort, "run", case, "p99_us")))
            if ratio is None:
                summary.append("%s batch %d: not judged (ONNX Runtime's Identity model took longer "
                               "than the model: rerun)" % (model, b))
            elif not met:
                summary.append("%s batch %d: %.2fx ONNX Runtime's corrected time, target %.1fx "
                               "(missed by %.0f%%)" % (model, b, ratio, targets[b],
                                                       (ratio / targets[b] - 1) * 100))
    for b in BATCHES:
        case = "mlp/b%d" % b
        if "slice_p50_us" not in ort[0]["run"][case]:
            continue
        corrected = statistics.median(r["run"][case]["p50_us"] - r["run"][case]["slice_p50_us"]
                                      for r in ort)
        lines.append("" if b == BATCHES[0] else None)
        lines.append("mlp batch %d corrected with a Slice model instead (the input cut to [%d,20], an "
                     "answer of the MLP's size; Identity returns [%d,300]): ORT Slice %.2f µs, ORT "
                     "corrected %.2f µs, Shoal / ORT **%.2fx**." % (
                         b, b, b, med(ort, "run", case, "slice_p50_us"), corrected,
                         med(shoal, "run", case, "p50_us") / corrected))
    lines = [l for l in lines if l is not None]
    lines += ["", "Shoal's own fixed cost per call, the Identity models in run(): mlp %.2f / %.2f µs, "
              "bag %.2f / %.2f µs (batch 1 / 32)." % tuple(
                  med(shoal, "run", "%s_identity/b%d" % (m, b), "p50_us")
                  for m in ("mlp", "bag") for b in BATCHES), "",
              "| cold load (median ms) | Shoal | ORT | Shoal / ORT |", "|---|---:|---:|---:|"]
    for model in ("mlp", "bag"):
        for kind, what in (("load", "load of the bytes in memory (load_onnx / InferenceSession.create(bytes))"),
                           ("cold", "file to first answer (read + load + run batch 1 / create(path) + run)")):
            s, o = med(shoal, kind, model, "p50_us"), med(ort, kind, model, "p50_us")
            lines.append("| %s: %s | %.3f | %.3f | %.2fx |" % (model, what, s / 1000, o / 1000, s / o))
    lines += ["", "Targets: " + ("; ".join(summary) if summary else "all met") + ".", "",
              "command: `/usr/bin/python3 bench/onnx_bench.py --rounds %d --seconds %g` "
              "(onnxruntime-node %s)" % (args.rounds, args.seconds, ORT_VERSION)]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0, help="timing per case per round")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-onnx", "bench", "onnx_bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "onnx.md"))
    ap.add_argument("--keep", help="export into this directory and keep it")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        raise SystemExit("%s is missing: cmake --build build-onnx --target onnx_bench" % args.bin)
    install = ort_install()
    tmp = args.keep or tempfile.mkdtemp(prefix="shoal-onnx-bench-")
    os.makedirs(tmp, exist_ok=True)
    try:
        log("exporting the models with torch %s ..." % torch.__version__)
        cases = export_models(tmp)
        loads = [" ".join(open("/proc/loadavg").read().split()[:3])]
        shoal, ort = [], []
        for rnd in range(args.rounds):
            log("round %d: Shoal ..." % (rnd + 1))
            shoal.append(run_shoal(args.bin, cases, args.seconds))
            log("round %d: ONNX Runtime ..." % (rnd + 1))
            ort.append(run_ort(install, cases, args.seconds))
        loads.append(" ".join(open("/proc/loadavg").read().split()[:3]))
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                    if l.startswith("model name")), "unknown CPU")
        text = report(shoal, ort, args, loads, cpu)
        print(text)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump({"shoal": shoal, "ort": ort}, f)
        log("wrote " + args.out)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
