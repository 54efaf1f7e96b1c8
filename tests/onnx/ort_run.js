// ONNX Runtime as onnx_test's second oracle: runs every case of manifest.json (written by
// make_models.py) single-threaded and writes each output next to PyTorch's, as <case>.<name>.ort.bin
// (raw little-endian). Then loads each extra model named on the command line, to prove that it is
// a valid ONNX file (the text models carry Shoal's metadata_props).
//
// Usage: node ort_run.js ORT_INSTALL_DIR DATA_DIR [EXTRA_MODEL...]
'use strict';
const fs = require('fs');
const path = require('path');

const [installDir, dir, ...extra] = process.argv.slice(2);
const ort = require(path.join(installDir, 'node_modules', 'onnxruntime-node'));
const options = {intraOpNumThreads: 1, interOpNumThreads: 1, executionProviders: ['cpu']};

function read(file, type) {
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, file)));  // a fresh, aligned copy
  return type === 'FP32' ? new Float32Array(bytes.buffer) : new BigInt64Array(bytes.buffer);
}

async function main() {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const sessions = new Map();
  for (const c of manifest.cases) {
    if (c.ort === false) continue;  // an operator ONNX Runtime does not run at this opset
    if (!sessions.has(c.model)) {
      sessions.set(c.model, await ort.InferenceSession.create(path.join(dir, c.model), options));
    }
    const feeds = {};
    for (const i of c.inputs) {
      feeds[i.name] = new ort.Tensor(i.type === 'FP32' ? 'float32' : 'int64', read(i.file, i.type), i.shape);
    }
    const out = await sessions.get(c.model).run(feeds);
    for (const o of c.outputs) {
      const data = out[o.name].data;
      fs.writeFileSync(path.join(dir, o.file.replace(/\.out\.bin$/, '.ort.bin')),
                       Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  for (const file of extra) await ort.InferenceSession.create(path.join(dir, file), options);
  console.log(`ran ${manifest.cases.length} cases, loaded ${extra.length} extra models`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
