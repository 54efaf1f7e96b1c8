#!/usr/bin/env python3
"""Shadow traffic cost bench (issue 18): a node's throughput with a 10% shadow against none.

Trains two versions of each of two models with the fasttext tool: `intents`
(examples/intents-v2.txt, dim 32: a typical chatbot) and `faq1000` (1000 labels, dim 100: a large
FAQ bot, where a predict costs the most). Starts one `shoal node`, pushes both versions of the
model (version 1 is production), and drives it with `wrk -t2 -c32 --latency` (bench/infer.lua).
Rounds alternate: no trial, then `shoal snapshot shadow MODEL 2 --share 10%` (10% of production's
requests also predicted by version 2, after the answer), then the trial stopped again, so drift on
a shared machine hits both alike. Reports the mean throughput and p99 of each and the ratio.
Target: shadow at 10% costs < 5% of throughput.

usage: bench/shadow_cost.py [--seconds N] [--rounds N] [--share PERCENT] [--json FILE]
Needs build/shoal (or $SHOAL_BIN), wrk and fasttext. Every process is stopped on exit.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile

from benchlib import ROOT, SHOAL, Node, faq_corpus, log, train_fasttext, wrk


def cli(node, *args):
    r = subprocess.run([SHOAL] + list(args) + ["--node", "127.0.0.1:%d" % node.zmq],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("shoal %s failed: %s" % (" ".join(args), r.stderr))
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--share", default="10%")
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="shoal-shadow-")
    try:
        faq_txt = os.path.join(tmp, "faq.txt")
        faq_corpus(faq_txt)
        intents = os.path.join(ROOT, "examples", "intents-v2.txt")
        small = ["-dim", "32", "-epoch", "10", "-bucket", "20000", "-wordNgrams", "2", "-minn",
                 "2", "-maxn", "4"]
        big = ["-dim", "100", "-epoch", "5", "-bucket", "20000", "-lr", "0.5"]
        models = [
            ("intents", "typical intent model (dim 32)",
             [train_fasttext(tmp, "intents-a", intents, small),
              train_fasttext(tmp, "intents-b", intents, small + ["-epoch", "11"])]),
            ("faq1000", "1000 labels, dim 100",
             [train_fasttext(tmp, "faq-a", faq_txt, big),
              train_fasttext(tmp, "faq-b", faq_txt, big + ["-epoch", "6"])]),
        ]
        results = {}
        for name, what, (v1, v2) in models:
            node = Node(tmp, name)
            try:
                node.push("bench/hot", v1)
                node.push("bench/hot", v2)
                wrk(node.url("bench/hot"), 2)  # load version 1, warm up
                runs = {"off": [], "shadow": []}
                for rnd in range(args.rounds):
                    for mode in ("off", "shadow"):
                        if mode == "shadow":
                            cli(node, "snapshot", "shadow", "bench/hot", "2", "--share", args.share)
                        log("%s: round %d, %s ..." % (name, rnd + 1, mode))
                        runs[mode].append(wrk(node.url("bench/hot"), args.seconds))
                        if mode == "shadow":
                            cli(node, "snapshot", "shadow", "bench/hot", "--stop")
            finally:
                node.stop()
            mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)
            results[name] = {
                "what": what,
                "off_rps": mean(runs["off"], "rps"),
                "shadow_rps": mean(runs["shadow"], "rps"),
                "off_p99_ms": mean(runs["off"], "p99_ms"),
                "shadow_p99_ms": mean(runs["shadow"], "p99_ms"),
                "runs": runs,
            }
            r = results[name]
            r["throughput_ratio"] = r["shadow_rps"] / r["off_rps"]
            log("%s: %.0f req/s without, %.0f with a %s shadow (%.3fx); p99 %.2f / %.2f ms" %
                (name, r["off_rps"], r["shadow_rps"], args.share, r["throughput_ratio"],
                 r["off_p99_ms"], r["shadow_p99_ms"]))
        print("| model | no trial req/s | %s shadow req/s | ratio | p99 no trial | p99 shadow |" % args.share)
        print("|---|---|---|---|---|---|")
        for name, r in results.items():
            print("| %s (%s) | %.0f | %.0f | %.3fx | %.2f ms | %.2f ms |" %
                  (name, r["what"], r["off_rps"], r["shadow_rps"], r["throughput_ratio"],
                   r["off_p99_ms"], r["shadow_p99_ms"]))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        Node.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
