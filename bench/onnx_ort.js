// ONNX Runtime's side of bench/onnx_bench.py: the same cases as build-onnx/bench/onnx_bench, run by
// onnxruntime-node (the version tests/onnx pins) on one thread: intraOpNumThreads 1,
// interOpNumThreads 1, sequential execution, graphOptimizationLevel 'all', CPU provider.
//
// For each case NAME/bN (a name without '_'), the case NAME_identity/bN (an Identity model of the
// same input, exported the same way) runs in the same loop, one call of each in turn, so the
// binding's own cost per call (feeds and results through N-API, the setImmediate each run() waits
// for) is measured next to the model under the same noise. Identity returns its whole input; where
// the model's answer is much smaller (the MLP: 20 floats a row against 300), a case NAME_slice/bN
// (the input sliced to the model's output shape) runs in the loop too, the same cost with an
// answer of the model's size. Every call is timed on its own
// with process.hrtime.bigint(). Also: session creation from bytes in memory (load) and from the
// file to the first answer (cold).
//
// Usage: node onnx_ort.js ORT_INSTALL_DIR CASES_FILE [SECONDS]
// Prints one JSON object: {"run": {case: {p50_us, p99_us, calls, identity_p50_us, identity_p99_us,
//                                          [slice_p50_us, slice_p99_us]}},
//                          "load": {model: {p50_us, calls}}, "cold": {model: {p50_us, calls}}}
'use strict';
const fs = require('fs');
const path = require('path');

const [installDir, casesFile, secondsArg] = process.argv.slice(2);
if (!installDir || !casesFile) {
  console.error('usage: node onnx_ort.js ORT_INSTALL_DIR CASES_FILE [SECONDS]');
  process.exit(2);
}
const seconds = Number(secondsArg || 1);
const ort = require(path.join(installDir, 'node_modules', 'onnxruntime-node'));
const options = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
};
const dir = path.dirname(casesFile);

function typedArray(file, type) {
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, file)));  // a fresh, aligned copy
  return type === 'FP32' ? new Float32Array(bytes.buffer) : new BigInt64Array(bytes.buffer);
}

function readCases() {
  const cases = new Map();
  for (const line of fs.readFileSync(casesFile, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, model, input, type, dims, inputFile, expected] = line.split('\t');
    const shape = dims.split(',').map(Number);
    cases.set(name, {
      name, model: path.join(dir, model), input,
      tensor: new ort.Tensor(type === 'FP32' ? 'float32' : 'int64', typedArray(inputFile, type), shape),
      expected: expected === '-' ? null : typedArray(expected, 'FP32'),
    });
  }
  return cases;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function summary(ns) {
  const us = ns.map((t) => Number(t) / 1000).sort((a, b) => a - b);
  return {p50_us: percentile(us, 0.5), p99_us: percentile(us, 0.99), calls: us.length};
}

function check(c, out) {
  if (!c.expected) return;
  const got = out[Object.keys(out)[0]].data;
  if (got.length !== c.expected.length) throw new Error(`${c.name}: output 0 has ${got.length} values, PyTorch's ${c.expected.length}`);
  let scale = 1e-6, diff = 0;
  for (let i = 0; i < got.length; ++i) {
    scale = Math.max(scale, Math.abs(c.expected[i]));
    diff = Math.max(diff, Math.abs(got[i] - c.expected[i]));
  }
  if (diff > 1e-4 * scale) throw new Error(`${c.name}: output 0 differs from PyTorch's by ${diff}`);
}

// Times fn() until `budget` seconds have passed (at least `min` calls); returns the times in ns.
async function timeCalls(fn, budget, min) {
  const times = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(budget * 1e9));
  while (times.length < min || process.hrtime.bigint() < end) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(process.hrtime.bigint() - t0);
  }
  return times;
}

async function main() {
  const cases = readCases();
  const sessions = new Map();
  const session = async (model) => {
    if (!sessions.has(model)) sessions.set(model, await ort.InferenceSession.create(model, options));
    return sessions.get(model);
  };
  const result = {run: {}, load: {}, cold: {}};
  for (const c of cases.values()) {
    const [name, batch] = c.name.split('/');
    if (name.includes('_') || !cases.has(`${name}_identity/${batch}`)) continue;
    // The model first, then its baselines; one call of each per turn of the loop.
    const runs = [];
    for (const [key, k] of [['', c], ['identity', cases.get(`${name}_identity/${batch}`)],
                            ['slice', cases.get(`${name}_slice/${batch}`)]]) {
      if (!k) continue;
      const s = await session(k.model);
      const feeds = {[k.input]: k.tensor};
      check(k, await s.run(feeds));
      runs.push({key, s, feeds, times: []});
    }
    for (let i = 0; i < 200; ++i) {  // warm up
      for (const r of runs) await r.s.run(r.feeds);
    }
    const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
    while (process.hrtime.bigint() < end) {
      for (const r of runs) {
        const t0 = process.hrtime.bigint();
        await r.s.run(r.feeds);
        r.times.push(process.hrtime.bigint() - t0);
      }
    }
    const entry = summary(runs[0].times);
    for (const r of runs.slice(1)) {
      const t = summary(r.times);
      entry[`${r.key}_p50_us`] = t.p50_us;
      entry[`${r.key}_p99_us`] = t.p99_us;
    }
    result.run[c.name] = entry;
  }
  // Loads: the first case of each model (batch 1) answers the cold start's first request.
  const done = new Set();
  for (const c of cases.values()) {
    const name = c.name.split('/')[0];
    if (done.has(name) || name.includes('_')) continue;
    done.add(name);
    const bytes = new Uint8Array(fs.readFileSync(c.model));
    const feeds = {[c.input]: c.tensor};
    result.load[name] = summary(await timeCalls(async () => {
      const s = await ort.InferenceSession.create(bytes, options);
      await s.release();
    }, seconds / 2, 5));
    result.cold[name] = summary(await timeCalls(async () => {
      const s = await ort.InferenceSession.create(c.model, options);
      await s.run(feeds);
      await s.release();
    }, seconds / 2, 5));
  }
  for (const s of sessions.values()) await s.release();
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
