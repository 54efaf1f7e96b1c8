#!/usr/bin/env bash
# Writes the seed corpora into tests/fuzz/corpus/ (replacing what is there); run it when a codec's
# messages change. Needs fuzz_make_seeds built (any build dir; BUILD_DIR, default build/), the
# fasttext tool, and /usr/bin/python3 with torch and onnx (tests/onnx/make_models.py).
#   tests/fuzz/make_seeds.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$root/build}"
corpus="$here/corpus"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cmake --build "$build" --target fuzz_make_seeds >/dev/null
for t in http api gossip catalog_sync config fasttext onnx; do rm -rf "${corpus:?}/$t"; done
"$build/tests/fuzz/fuzz_make_seeds" "$corpus"

# fastText: tiny supervised models (dim 4, few buckets), softmax with word bigrams, hierarchical
# softmax, one-vs-all, and a quantized .ftz (-qnorm).
mkdir -p "$corpus/fasttext"
for i in $(seq 1 20); do
  echo "__label__greet hello there friend $i"
  echo "__label__bye goodbye see you later $i"
  echo "__label__help i need some help please $i"
done >"$tmp/train.txt"
ft() { fasttext "$@" >/dev/null 2>&1; }
ft supervised -input "$tmp/train.txt" -output "$tmp/softmax" -dim 4 -epoch 2 -minCount 1 \
  -bucket 64 -wordNgrams 2 -minn 2 -maxn 3 -seed 1 -thread 1
ft supervised -input "$tmp/train.txt" -output "$tmp/hs" -dim 4 -epoch 2 -minCount 1 -bucket 0 \
  -loss hs -seed 1 -thread 1
ft supervised -input "$tmp/train.txt" -output "$tmp/ova" -dim 4 -epoch 2 -minCount 1 -bucket 0 \
  -loss ova -seed 1 -thread 1
# quantizing needs 256 rows: 300 buckets (the output, 3 labels, stays unquantized: no -qout)
ft supervised -input "$tmp/train.txt" -output "$tmp/quantized" -dim 4 -epoch 2 -minCount 1 \
  -bucket 300 -wordNgrams 2 -seed 1 -thread 1
ft quantize -input "$tmp/train.txt" -output "$tmp/quantized" -qnorm -dsub 2
cp "$tmp/softmax.bin" "$corpus/fasttext/softmax_ngrams.bin"
cp "$tmp/hs.bin" "$corpus/fasttext/hs.bin"
cp "$tmp/ova.bin" "$corpus/fasttext/ova.bin"
cp "$tmp/quantized.ftz" "$corpus/fasttext/quantized.ftz"

# ONNX: the onnx_test models under 100 KB (the exported MLPs and bags are larger), refusals too.
mkdir -p "$corpus/onnx"
mkdir -p "$tmp/onnx"
/usr/bin/python3 "$root/tests/onnx/make_models.py" "$tmp/onnx" >/dev/null
find "$tmp/onnx" -name '*.onnx' -size -100k -exec cp {} "$corpus/onnx/" \;

du -sh "$corpus"
for t in "$corpus"/*/; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"; done
