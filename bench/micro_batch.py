#!/usr/bin/env python3
"""Micro-batching bench (issue 5): one hot model, with and without micro-batching.

Trains two models with the fasttext tool: `intents` (examples/intents-v2.txt, dim 32: a typical
chatbot, 20-odd labels) and `faq1000` (1000 labels, dim 100: a large FAQ bot, an output layer of
400 KB). For each, starts a `shoal node` with --micro-batch-texts 64 (the default: requests that
arrive together are predicted together, one sgemm for the output layer) and one with
--micro-batch-texts 0 (each request alone), in turn, and drives the one model with
`wrk -t2 -c32 --latency` (one short text per request, bench/infer.lua). Rounds alternate
(on, off, on, off, ...) so that drift on a shared machine hits both alike; the report gives the
mean of the rounds and the on/off throughput ratio.

usage: bench/micro_batch.py [--seconds N] [--rounds N] [--json FILE]
Needs build/shoal (or $SHOAL_BIN), wrk and fasttext. Every process is stopped on exit.
"""
import argparse
import json
import os
import shutil
import tempfile

from benchlib import ROOT, Node, faq_corpus, log, train_fasttext, wrk


def measure(tmp, model_path, batch_texts, seconds, tag):
    node = Node(tmp, "%s-%s" % (tag, batch_texts), ["--micro-batch-texts", str(batch_texts)])
    try:
        node.push("bench/hot", model_path)
        wrk(node.url("bench/hot"), 2)  # load the model, warm up
        return wrk(node.url("bench/hot"), seconds)
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="shoal-microbatch-")
    try:
        faq_txt = os.path.join(tmp, "faq.txt")
        faq_corpus(faq_txt)
        models = [
            ("intents", "typical intent model (dim 32)",
             train_fasttext(tmp, "intents", os.path.join(ROOT, "examples", "intents-v2.txt"),
                            ["-dim", "32", "-epoch", "10", "-bucket", "20000", "-wordNgrams",
                             "2", "-minn", "2", "-maxn", "4"])),
            ("faq1000", "1000 labels, dim 100",
             train_fasttext(tmp, "faq1000", faq_txt, ["-dim", "100", "-epoch", "5", "-bucket",
                                                      "20000", "-lr", "0.5"])),
        ]
        results = {}
        for name, what, path in models:
            runs = {"on": [], "off": []}
            for rnd in range(args.rounds):
                for mode, texts in (("on", 64), ("off", 0)):
                    log("%s: round %d, micro-batching %s ..." % (name, rnd + 1, mode))
                    runs[mode].append(measure(tmp, path, texts, args.seconds, name))
            results[name] = {"what": what, "runs": runs}
        print(report(results, args.seconds))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        Node.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


def mean(runs, key):
    return sum(r[key] for r in runs) / len(runs)


def report(results, seconds):
    lines = ["### Micro-batching: one hot model, wrk -t2 -c32 -d%ds (mean of rounds)" % seconds,
             "",
             "| model | micro-batching on: req/s, p50 / p99 | off: req/s, p50 / p99 | "
             "throughput on/off |", "|---|---|---|---|"]
    for name, r in results.items():
        on, off = r["runs"]["on"], r["runs"]["off"]
        lines.append("| %s (%s) | %.0f, %.3f / %.3f ms | %.0f, %.3f / %.3f ms | %.2fx |" % (
            name, r["what"], mean(on, "rps"), mean(on, "p50_ms"), mean(on, "p99_ms"),
            mean(off, "rps"), mean(off, "p50_ms"), mean(off, "p99_ms"),
            mean(on, "rps") / mean(off, "rps")))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
