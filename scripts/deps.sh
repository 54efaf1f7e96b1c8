#!/usr/bin/env bash
# Installs the Debian packages Shoal needs that are missing; silent and fast when all are present.
# usage: scripts/deps.sh build|test|demo|bench|bundle|root|fuzz
# Sourced or run by scripts/test.sh, scripts/demo.sh and bench/run_http.sh.
set -euo pipefail

build_pkgs=(cmake make g++ pkg-config libcaf-dev libprotobuf-dev protobuf-compiler libzmq3-dev
            cppzmq-dev libboost-dev libboost-system-dev libopenblas-dev libssl-dev zlib1g-dev
            nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libfasttext-dev
            libonnx-dev libgrpc++-dev protobuf-compiler-grpc)
test_pkgs=(fasttext openssl prometheus patchelf binutils debootstrap lintian python3 python3-zmq
           python3-protobuf python3-torch python3-onnx python3-grpcio
           python3-requests python3-numpy
           iproute2 iptables umoci skopeo chromium)  # fasttext: the test oracle; openssl: test certificates;
            # prometheus: scrapes a node; patchelf, binutils, debootstrap, lintian: the bundle and
            # .deb tests (in a minimal Debian root); python3-*: the Python client's test;
            # python3-torch, python3-onnx: build and export the ONNX test models (npm, already on the
            # machine, installs their second oracle, onnxruntime-node, into a cache); python3-grpcio,
            # -requests, -numpy: the V2 clients test; iproute2, iptables: the fault tests' network
            # namespaces and link faults (and the image test's); umoci, skopeo: read the container
            # image (tests/image) as independent checks of scripts/image.sh's layout; chromium: the
            # console's browser test (driven by playwright-core from npm, which the test installs
            # into a cache from tests/console's lock file; it downloads no browser)
demo_pkgs=(fasttext curl)        # the demo trains its sample models with the fasttext tool
bundle_pkgs=(patchelf binutils)  # scripts/bundle.sh: rpaths, strip; scripts/image.sh: the interpreter
root_pkgs=(debootstrap)            # scripts/debian-root.sh: a minimal Debian root for the bundle test
fuzz_pkgs=(clang libclang-rt-14-dev)  # scripts/test.sh --fuzz: libFuzzer (clang 14's runtime)
bench_pkgs=(fasttext curl python3 wrk nginx-light python3-fastapi python3-uvicorn python3-fasttext python3-numpy python3-matplotlib)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  demo) want+=("${demo_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  bundle) want+=("${bundle_pkgs[@]}") ;;
  root) want+=("${root_pkgs[@]}") ;;
  fuzz) want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}") ;;  # the tests' configure step needs fasttext
  *) echo "usage: scripts/deps.sh build|test|demo|bench|bundle|root|fuzz" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing missing packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
