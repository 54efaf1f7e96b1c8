#!/usr/bin/env bash
# Loopback failure-detection times of a real 3-node Shoal cluster: how long after a kill -9 until
# every other node sees the node as not alive (suspect or dead), how long after a restart until
# every node sees it alive again, and how long after SIGSTOP until it is not alive / after
# SIGCONT until it is alive. Run `bench/cluster_detection.sh --help` for usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() {
  cat <<USAGE
usage: bench/cluster_detection.sh [-h|--help]

Starts three nodes (n1, n2, n3) of build/shoal on free loopback ports with default timings,
then ROUNDS times: kill -9 n3 and time until n1 and n2 both report it not alive
(\`shoal cluster status --json\`, polled every 20 ms); restart it and time until all three
report it alive. Then the same with SIGSTOP / SIGCONT. Prints a markdown table with the median
and max of each, and writes it to \$OUT. Every node is stopped on exit, Ctrl-C or failure.

environment:
  SHOAL_BIN   the shoal executable (default \$root/build/shoal)
  ROUNDS      kills and pauses to time (default 7)
  OUT         the report (default \$root/bench/results/cluster_detection.md)
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) echo "unexpected argument '$1' (see --help)" >&2; exit 2 ;; esac

SHOAL_BIN="${SHOAL_BIN:-$root/build/shoal}"
ROUNDS="${ROUNDS:-7}"
OUT="${OUT:-$root/bench/results/cluster_detection.md}"
[ -x "$SHOAL_BIN" ] || { echo "no shoal executable at $SHOAL_BIN (build first)" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-detect.XXXXXX")"
declare -A pid=() http=() zmq=() cport=()
cleanup() {
  local rc=$?
  for n in "${!pid[@]}"; do kill -CONT "${pid[$n]}" 2>/dev/null || true; kill -KILL "${pid[$n]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r -a ports < <(python3 - <<'PY'
import socket
s = [socket.socket() for _ in range(9)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
PY
)
i=0
for n in n1 n2 n3; do http[$n]=${ports[$i]}; zmq[$n]=${ports[$((i+1))]}; cport[$n]=${ports[$((i+2))]}; i=$((i+3)); done
head -c 32 /dev/urandom | base64 > "$tmp/secret"
seeds="127.0.0.1:${cport[n1]},127.0.0.1:${cport[n2]}"

start() {
  local n=$1
  "$SHOAL_BIN" node --data-dir "$tmp/$n" --name "$n" --http-port "${http[$n]}" --zmq-port "${zmq[$n]}" --grpc-port 0 \
    --cluster-port "${cport[$n]}" --seeds "$seeds" --cluster-secret-file "$tmp/secret" 2>>"$tmp/$n.log" &
  pid[$n]=$!
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:${http[$n]}/v2/health/ready" >/dev/null && return 0
    sleep 0.05
  done
  echo "$n did not start; log:" >&2; cat "$tmp/$n.log" >&2; exit 1
}

# status OBSERVER NAME: prints NAME's status as OBSERVER sees it ("none" if absent or no answer).
status() {
  "$SHOAL_BIN" cluster status --json --node "127.0.0.1:${zmq[$1]}" --timeout 1 2>/dev/null |
    python3 -c 'import json,sys
try:
    m = {x["name"]: x["status"] for x in json.load(sys.stdin)["members"]}
    print(m.get(sys.argv[1], "none"))
except Exception:
    print("none")' "$2"
}

now_ms() { date +%s%3N; }
# time_until COND_FN LIMIT_MS: prints ms until COND_FN succeeds, or fails after LIMIT_MS.
time_until() {
  local t0; t0=$(now_ms)
  while true; do
    if "$1"; then echo $(( $(now_ms) - t0 )); return 0; fi
    (( $(now_ms) - t0 > $2 )) && return 1
    sleep 0.02
  done
}
n3_not_alive() { [ "$(status n1 n3)" != alive ] && [ "$(status n2 n3)" != alive ]; }
n3_alive() { [ "$(status n1 n3)" = alive ] && [ "$(status n2 n3)" = alive ] && [ "$(status n3 n1)" = alive ]; }
all_alive() { n3_alive && [ "$(status n1 n2)" = alive ] && [ "$(status n2 n1)" = alive ]; }

for n in n1 n2 n3; do start $n; done
time_until all_alive 20000 >/dev/null || { echo "the cluster did not form" >&2; exit 1; }

kill_ms=(); back_ms=(); stop_ms=(); cont_ms=()
for r in $(seq 1 "$ROUNDS"); do
  kill -KILL "${pid[n3]}"; wait "${pid[n3]}" 2>/dev/null || true
  kill_ms+=("$(time_until n3_not_alive 20000)") || { echo "kill $r: not detected in 20 s" >&2; exit 1; }
  start n3
  back_ms+=("$(time_until n3_alive 20000)") || { echo "restart $r: not alive in 20 s" >&2; exit 1; }
  sleep 1
  kill -STOP "${pid[n3]}"
  stop_ms+=("$(time_until n3_not_alive 20000)") || { echo "pause $r: not detected in 20 s" >&2; exit 1; }
  sleep 4   # long enough to be declared dead
  kill -CONT "${pid[n3]}"
  cont_ms+=("$(time_until n3_alive 20000)") || { echo "resume $r: not alive in 20 s" >&2; exit 1; }
  echo "round $r: kill -9 -> not alive ${kill_ms[-1]} ms, restart -> alive ${back_ms[-1]} ms, SIGSTOP -> not alive ${stop_ms[-1]} ms, SIGCONT -> alive ${cont_ms[-1]} ms" >&2
  sleep 1
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%d | %d", m, a[NR]}'; }
mkdir -p "$(dirname "$OUT")"
{
  echo "| event (3 nodes, loopback, default timings; $ROUNDS rounds) | median ms | max ms |"
  echo "|---|---:|---:|"
  echo "| kill -9 -> every other node sees it not alive | $(stats "${kill_ms[@]}") |"
  echo "| restart -> alive on every node | $(stats "${back_ms[@]}") |"
  echo "| SIGSTOP -> every other node sees it not alive | $(stats "${stop_ms[@]}") |"
  echo "| SIGCONT (after 4 s, dead by then) -> alive on every node | $(stats "${cont_ms[@]}") |"
  echo
  echo "Times include polling \`shoal cluster status\` (a CLI process per poll, ~20-40 ms). $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc)."
} | tee "$OUT"
