#!/usr/bin/env bash
# Soak test of failure detection: N nodes on loopback for DURATION under inference load; counts
# every status change the nodes log. A healthy run has none: no alive node is ever suspected
# (or, worse, declared dead). Run `bench/cluster_soak.sh --help` for usage.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() {
  cat <<USAGE
usage: bench/cluster_soak.sh [-h|--help]

Starts NODES nodes of build/shoal on free loopback ports (default timings, a cluster secret),
pushes a small model to the first, and runs wrk against every node's HTTP inference for
DURATION while the cluster gossips. Then prints how many times any node logged a member going
suspect or dead, and the final \`shoal cluster status\` of every node. Exit status 1 if any alive
node was ever marked dead. Every process is stopped on exit, Ctrl-C or failure.

environment:
  SHOAL_BIN   the shoal executable (default \$root/build/shoal)
  NODES       cluster size (default 5)
  DURATION    how long (default 10m; wrk syntax: 30s, 10m)
  OUT         the report (default \$root/bench/results/cluster_soak.md)
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) echo "unexpected argument '$1' (see --help)" >&2; exit 2 ;; esac
SHOAL_BIN="${SHOAL_BIN:-$root/build/shoal}"
NODES="${NODES:-5}"
DURATION="${DURATION:-10m}"
OUT="${OUT:-$root/bench/results/cluster_soak.md}"
[ -x "$SHOAL_BIN" ] || { echo "no shoal executable at $SHOAL_BIN (build first)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: scripts/deps.sh bench" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-soak.XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r -a ports < <(python3 - "$NODES" <<'PY'
import socket, sys
s = [socket.socket() for _ in range(3 * int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
PY
)
head -c 32 /dev/urandom | base64 > "$tmp/secret"
seeds="127.0.0.1:${ports[2]},127.0.0.1:${ports[5]}"
for i in $(seq 0 $((NODES - 1))); do
  h=${ports[$((3*i))]}; z=${ports[$((3*i+1))]}; c=${ports[$((3*i+2))]}
  "$SHOAL_BIN" node --data-dir "$tmp/n$i" --name "n$i" --http-port "$h" --zmq-port "$z" --grpc-port 0 \
    --cluster-port "$c" --seeds "$seeds" --cluster-secret-file "$tmp/secret" 2>"$tmp/n$i.log" &
  pids+=($!)
done
for i in $(seq 0 $((NODES - 1))); do
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:${ports[$((3*i))]}/v2/health/ready" >/dev/null && break; sleep 0.05; done
done
fasttext supervised -input "$root/examples/intents-v2.txt" -output "$tmp/model" -dim 16 -epoch 10 \
  -minn 2 -maxn 4 -wordNgrams 2 -bucket 20000 -thread 1 -verbose 0
for i in $(seq 0 $((NODES - 1))); do
  "$SHOAL_BIN" snapshot push soak/bot "$tmp/model.bin" --node "127.0.0.1:${ports[$((3*i+1))]}" >/dev/null
done
sleep 2
echo "cluster of $NODES up; load for $DURATION" >&2
loads=()
for i in $(seq 0 $((NODES - 1))); do
  TOP_K=1 wrk -t1 -c2 -d"$DURATION" -s "$root/bench/infer.lua" \
    "http://127.0.0.1:${ports[$((3*i))]}/v2/models/soak/bot/infer" >"$tmp/wrk$i.txt" 2>&1 &
  loads+=($!)
done
for p in "${loads[@]}"; do wait "$p"; done

suspects=$(cat "$tmp"/n*.log | grep -c -- '-> suspect' || true)
deaths=$(cat "$tmp"/n*.log | grep -c -- '-> dead' || true)
requests=$(awk '/requests in/ {s += $1} END {print s + 0}' "$tmp"/wrk*.txt)
mkdir -p "$(dirname "$OUT")"
{
  echo "| soak | value |"
  echo "|---|---:|"
  echo "| nodes | $NODES |"
  echo "| duration | $DURATION |"
  echo "| inference requests served (wrk, 2 connections per node) | $requests |"
  echo "| times any node marked a member suspect | $suspects |"
  echo "| times any node marked a member dead | $deaths |"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), default timings."
  echo
  echo '```'
  "$SHOAL_BIN" cluster status --node "127.0.0.1:${ports[1]}"
  echo '```'
} | tee "$OUT"
grep -h -- '-> suspect\|-> dead' "$tmp"/n*.log | head -20 >&2 || true
[ "$deaths" -eq 0 ]
