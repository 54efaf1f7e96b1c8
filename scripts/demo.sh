#!/usr/bin/env bash
# The Shoal demo: installs what is missing, builds, starts one embedded node, trains two versions
# of a sample shop-assistant intent model, pushes both, shows answers, promotes, rolls back, shows
# the validation gate refusing a broken retrain and the watch rolling a forced one back by
# itself, and leaves the node running with commands to try. Ctrl-C stops the node cleanly.
#
# Environment: SHOAL_DEMO_DIR (default: .demo/ in the repo; its data/ is emptied at each run),
# SHOAL_HTTP_PORT (7422), SHOAL_ZMQ_PORT (7421).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
demo="${SHOAL_DEMO_DIR:-$root/.demo}"
http_port="${SHOAL_HTTP_PORT:-7422}"
zmq_port="${SHOAL_ZMQ_PORT:-7421}"
grpc_port="${SHOAL_GRPC_PORT:-$((http_port + 1))}"
build="${BUILD_DIR:-$root/build}"
shoal="$build/shoal"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

step "1/8 installing missing packages (Debian)"
"$root/scripts/deps.sh" demo

step "2/8 building shoal in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target shoal

for port in "$http_port" "$zmq_port" "$grpc_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use (another node?). Stop it, or set SHOAL_HTTP_PORT/SHOAL_ZMQ_PORT/SHOAL_GRPC_PORT." >&2
    exit 1
  fi
done

step "3/8 training two versions of a sample intent model (fasttext tool)"
mkdir -p "$demo/models"
for v in 1 2; do
  fasttext supervised -input "$root/examples/intents-v$v.txt" -output "$demo/models/shop-assistant-v$v" \
    -epoch 40 -lr 0.5 -dim 32 -bucket 20000 -wordNgrams 2 -minn 2 -maxn 4 -thread 1 -seed 1 -verbose 0
  echo "trained $demo/models/shop-assistant-v$v.bin"
done
echo "v2 adds a cancel_order intent; v1 files cancellations under refund."

step "4/8 starting a node (fresh data in $demo/data, log in $demo/node.log)"
# The demo's own directory: each run starts from an empty node so versions are numbered 1 and 2.
rm -rf "$demo/data"
"$shoal" node --data-dir "$demo/data" --http-port "$http_port" --zmq-port "$zmq_port" --grpc-port "$grpc_port" \
  --name demo-node 2>"$demo/node.log" &
node_pid=$!
stopped=0
stop_node() {
  [ "$stopped" = 0 ] || return 0
  stopped=1
  # Ctrl-C reaches the node too (same process group); it stops on its own, or on this SIGTERM.
  kill -TERM "$node_pid" 2>/dev/null || true
  wait "$node_pid" 2>/dev/null || true
  echo
  echo "node stopped ($(tail -n 1 "$demo/node.log" 2>/dev/null)); data kept in $demo/data"
}
trap 'stop_node; exit 0' INT TERM
trap stop_node EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$http_port/v2/health/ready" >/dev/null && break
  kill -0 "$node_pid" 2>/dev/null || { echo "node failed to start:"; cat "$demo/node.log"; exit 1; }
  sleep 0.1
done
tail -n 2 "$demo/node.log"
export SHOAL_NODE="127.0.0.1:$zmq_port"

ask() {
  for text in "where is my parcel" "cancel my order" "are you open on sunday" "привет"; do
    local quoted="\"$text\""
    printf '  %s%*s -> ' "$quoted" $((24 - ${#quoted})) ""
    "$shoal" infer demo/shop-assistant "$text" | head -n 1
  done
}

step "5/8 pushing both versions (the first becomes production; v2 goes to staging)"
show "$shoal" snapshot push demo/shop-assistant "$demo/models/shop-assistant-v1.bin" --note "first bot"
show "$shoal" snapshot push demo/shop-assistant "$demo/models/shop-assistant-v2.bin" --label staging --note "adds cancel_order"
echo "production answers (version 1):"
ask
echo "over HTTP (KServe V2):"
show curl -s "http://127.0.0.1:$http_port/v2/models/demo/shop-assistant/infer" \
  -d '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["cancel my order"]}],"parameters":{"top_k":2}}'
echo

step "6/8 promoting version 2 to production, then rolling back"
show "$shoal" snapshot promote demo/shop-assistant 2
echo "production answers (version 2):"
ask
show "$shoal" snapshot rollback demo/shop-assistant
echo "production answers after the rollback (version 1 again):"
ask
show "$shoal" snapshot list demo/shop-assistant

step "7/8 the validation gate refuses a broken model; the watch rolls a forced one back"
# A broken retrain: the same texts with their labels shuffled (it learned nothing).
paste -d' ' <(cut -d' ' -f1 "$root/examples/intents-v2.txt" | shuf --random-source=<(yes)) \
  <(cut -d' ' -f2- "$root/examples/intents-v2.txt") > "$demo/models/shuffled.txt"
fasttext supervised -input "$demo/models/shuffled.txt" -output "$demo/models/shop-assistant-broken" \
  -epoch 40 -lr 0.5 -dim 32 -bucket 20000 -wordNgrams 2 -minn 2 -maxn 4 -thread 1 -seed 1 -verbose 0
show "$shoal" snapshot push demo/shop-assistant "$demo/models/shop-assistant-broken.bin" \
  --note "nightly retrain" --tag dataset=shuffled --source "demo://shuffled-labels"
show "$shoal" validation set demo/shop-assistant "$root/examples/intents-v2.txt"
show "$shoal" snapshot promote demo/shop-assistant 3 || echo "(refused, exit $?: production did not move)"
show "$shoal" snapshot promote demo/shop-assistant 2
# The demo watches closely: every request compared, judged after 100 of them.
show "$shoal" policy set demo/shop-assistant watch_share=100% min_requests=100 >/dev/null
show "$shoal" snapshot promote demo/shop-assistant 3 --force --user demo
echo "sending traffic; the node compares version 3 with version 2 on every request..."
mapfile -t texts < <(cut -d' ' -f2- "$root/examples/intents-v2.txt")
for i in $(seq 0 399); do
  printf '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["%s"]}]}' "${texts[$((i % ${#texts[@]}))]}" |
    curl -s -o /dev/null "http://127.0.0.1:$http_port/v2/models/demo/shop-assistant/infer" -d @-
  if [ $((i % 50)) = 49 ] && "$shoal" snapshot list demo/shop-assistant | grep -q "(auto:"; then break; fi
done
sleep 3
show "$shoal" snapshot list demo/shop-assistant
grep "automatic rollback" "$demo/node.log" | tail -n 1 || true

step "8/8 the node keeps running; try:"
cat <<TRY
  export SHOAL_NODE=127.0.0.1:$zmq_port
  $shoal infer demo/shop-assistant "i want to talk to a person" --k 3
  $shoal snapshot promote demo/shop-assistant 1     # refused: 1 scores lower than 2 on the set
  $shoal snapshot rollback demo/shop-assistant
  $shoal snapshot list demo/shop-assistant --json
  $shoal snapshot show demo/shop-assistant 3
  $shoal snapshot validate demo/shop-assistant 2
  $shoal models
  curl -s http://127.0.0.1:$http_port/v2/models/demo/shop-assistant
  curl -s http://127.0.0.1:$http_port/v2/models/demo/shop-assistant/infer \\
    -d '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["hello"]}]}'
  curl -s http://127.0.0.1:$http_port/metrics | grep -v '^#'
  $shoal bench --http 127.0.0.1:$http_port --model demo/shop-assistant --ramp 1000,1000,10000 --slo-ms 5 --seconds 2
  tail -f $demo/node.log

Press Ctrl-C to stop the node.
TRY
wait "$node_pid"
