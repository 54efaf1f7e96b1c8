#!/usr/bin/env bash
# HTTP benchmark: Shoal against a FastAPI baseline and an nginx ceiling, same run, loopback only.
# Run `bench/run_http.sh --help` for usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
invoked="$0${*:+ $*}"

usage() {
  cat <<EOF
usage: bench/run_http.sh [-h|--help]

Measures, in one run on 127.0.0.1, the same fastText intent model served three ways:
  shoal    a Shoal node (\$SHOAL_BIN node ...), the model pushed with \`shoal snapshot push\`
  fastapi  FastAPI + pydantic + the fasttext Python binding, uvicorn with 2 workers
           (bench/fastapi_server.py): the baseline, with TCP_NODELAY set on its sockets
  fastapi-stock  the same server exactly as uvicorn runs it out of the box: Nagle left on for
           keep-alive connections, so each response waits on a delayed ACK (see below)
  nginx    nginx (2 workers) returning a fixed, real-looking V2 answer: the ceiling
All answer POST /v2/models/bench/intents/infer (KServe V2 JSON). The model is trained with the
fasttext tool from examples/intents-v2.txt into a temp dir. Each server is started, checked
(HTTP 200 and "outputs" in the body, else the script fails), warmed up, measured with wrk
(bench/infer.lua: one short text per request, rotating), and stopped before the next one.

Prints a markdown table (requests/s, p50, p99, non-2xx, socket errors) and the ratios
shoal/fastapi (target >= 30x) and shoal/nginx (target >= 0.25x), and writes it to \$OUT.
Missing Debian packages are installed first with scripts/deps.sh bench (needs root or sudo).
Every server started is stopped on exit, Ctrl-C or failure; the temp dir is removed.

environment:
  SHOAL_BIN        the shoal executable (default \$root/build/shoal)
  DURATION         wrk measurement time per server (default 10s; wrk syntax: 30s, 1m)
  WARMUP           wrk warm-up time before each measurement (default 3s)
  CONNECTIONS      wrk connections (default 32)
  THREADS          wrk threads (default 2)
  TOP_K            parameters.top_k in every request (default 1)
  OUT              where the markdown report goes (default \$root/bench/results/http.md)
  SERVERS          which servers to measure, in order (default "shoal fastapi fastapi-stock nginx");
                   ratios are reported only when both sides were measured
  PYTHON           the Python that has the Debian python3-fastapi etc. (default /usr/bin/python3)
  SHOAL_NODE_ARGS  extra arguments for \`shoal node\` (default none)
  SERVER_CPUS      pin every server to these CPUs (taskset list, e.g. 0-7; default: unpinned)
  WRK_CPUS         pin wrk to these CPUs (default: unpinned)
  NGINX_WORKERS    nginx worker processes (default 2)
  KEEP_TMP=1       keep the temp dir (model, logs, raw wrk output) and print its path

example:
  DURATION=30s bench/run_http.sh
EOF
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "run_http.sh: unexpected argument '$1' (see --help)" >&2; exit 2 ;;
esac

SHOAL_BIN="${SHOAL_BIN:-$root/build/shoal}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
TOP_K="${TOP_K:-1}"
OUT="${OUT:-$root/bench/results/http.md}"
SERVERS="${SERVERS:-shoal fastapi fastapi-stock nginx}"
SHOAL_NODE_ARGS="${SHOAL_NODE_ARGS:-}"
SERVER_CPUS="${SERVER_CPUS:-}"
WRK_CPUS="${WRK_CPUS:-}"
NGINX_WORKERS="${NGINX_WORKERS:-2}"
KEEP_TMP="${KEEP_TMP:-0}"
server_prefix=()
[ -n "$SERVER_CPUS" ] && server_prefix=(taskset -c "$SERVER_CPUS")
wrk_prefix=()
[ -n "$WRK_CPUS" ] && wrk_prefix=(taskset -c "$WRK_CPUS")
if [ -z "${PYTHON:-}" ]; then
  # Debian's python3-* packages live in the system Python; a pyenv/venv python3 would not see them.
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
export TOP_K

model_id="bench/intents"
infer_path="/v2/models/$model_id/infer"
probe_text="where is my parcel"
probe_body="{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"$probe_text\"]}],\"parameters\":{\"top_k\":$TOP_K}}"

log() { printf '[run_http] %s\n' "$*" >&2; }
die() { printf '[run_http] FAILED: %s\n' "$*" >&2; exit 1; }

for s in $SERVERS; do
  case "$s" in shoal|fastapi|fastapi-stock|nginx) ;;
    *) die "SERVERS: unknown server '$s' (shoal, fastapi, fastapi-stock, nginx)" ;; esac
done
[[ "$CONNECTIONS" =~ ^[0-9]+$ && "$THREADS" =~ ^[0-9]+$ && "$TOP_K" =~ ^[0-9]+$ ]] ||
  die "CONNECTIONS, THREADS and TOP_K must be integers"

# ---- clean-up: every server we start is stopped, whatever happens --------------------------------

tmp=""
pids=()       # process-group leaders we started (each server runs in its own session)
wrk_pid=""    # the wrk running now, if any
declare -A stopped=()   # pids already stopped and reaped: never signalled again (pid reuse)
stop_group() {
  local pid="$1"
  [ -z "${stopped[$pid]:-}" ] || return 0
  stopped[$pid]=1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGTERM in 5s; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # Workers left behind by a leader that died first (same process group).
  kill -KILL -- "-$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  if [ -n "$wrk_pid" ] && kill -0 "$wrk_pid" 2>/dev/null; then
    kill -TERM "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do stop_group "$pid"; done
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    if [ "$KEEP_TMP" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# start NAME LOGFILE CMD... : runs CMD in a new session (so its workers share its process group).
started_pid=""
start() {
  local name="$1" logfile="$2"
  shift 2
  setsid "${server_prefix[@]}" "$@" >"$logfile" 2>&1 </dev/null &
  started_pid=$!
  pids+=("$started_pid")
  log "started $name (pid $started_pid), log $logfile"
}

show_log() {
  echo "---- last lines of $1 ----" >&2
  tail -n 30 "$1" >&2 || true
  echo "----" >&2
}

# wait_http NAME PID LOGFILE URL : waits up to 30s for URL to answer anything while PID lives.
wait_http() {
  local name="$1" pid="$2" logfile="$3" url="$4"
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0
      wait "$pid" 2>/dev/null || rc=$?
      show_log "$logfile"
      die "$name exited during start-up with status $rc (port taken? see its log above)"
    fi
    if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.1
  done
  show_log "$logfile"
  die "$name did not answer $url within 30s"
}

# verify NAME PID LOGFILE URL : POSTs the probe; needs HTTP 200 and "outputs" in the body (retries
# for up to 10s: a model may load lazily). Leaves the body in $tmp/NAME.probe.json.
verify() {
  local name="$1" pid="$2" logfile="$3" url="$4" code=""
  local body="$tmp/$name.probe.json"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { show_log "$logfile"; die "$name died"; }
    code=$(curl -s -o "$body" -w '%{http_code}' --max-time 5 -X POST \
                -H 'Content-Type: application/json' --data-binary "$probe_body" "$url" || true)
    if [ "$code" = 200 ] && grep -q '"outputs"' "$body"; then
      log "$name answers: $(head -c 300 "$body")"
      return 0
    fi
    sleep 0.2
  done
  show_log "$logfile"
  die "$name did not answer POST $url with 200 and \"outputs\": last status '$code', body: $(head -c 500 "$body" 2>/dev/null)"
}

# ---- dependencies and tools ----------------------------------------------------------------------

log "checking packages (scripts/deps.sh bench)"
"$root/scripts/deps.sh" bench
for tool in wrk nginx fasttext curl setsid; do
  command -v "$tool" >/dev/null || die "'$tool' is not on PATH"
done
if [[ " $SERVERS " == *" fastapi"* || " $SERVERS " == *" nginx "* ]]; then
  "$PYTHON" -c 'import fastapi, uvicorn, pydantic, fasttext, numpy' 2>/dev/null ||
    die "$PYTHON cannot import fastapi, uvicorn, pydantic, fasttext and numpy (set PYTHON to the system python3)"
fi
if [[ " $SERVERS " == *" shoal "* ]]; then
  [ -x "$SHOAL_BIN" ] || die "no shoal executable at $SHOAL_BIN (build it: scripts/build.sh, or set SHOAL_BIN)"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")"
log "temp dir $tmp"

# ---- the model -----------------------------------------------------------------------------------

log "training the model (fasttext supervised, examples/intents-v2.txt)"
fasttext supervised -input "$root/examples/intents-v2.txt" -output "$tmp/intents" \
  -dim 32 -bucket 20000 -wordNgrams 2 -minn 2 -maxn 4 -loss softmax \
  -epoch 25 -lr 0.5 -thread 1 -seed 1 -verbose 0
model="$tmp/intents.bin"
[ -s "$model" ] || die "fasttext did not write $model"

# ---- free ports (all held at once, then released, so they are distinct) --------------------------

read -r port_shoal_http port_shoal_zmq port_shoal_cluster port_fastapi port_nginx < <(
  "$PYTHON" - <<'EOF'
import socket
socks = []
for _ in range(5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
)
[ -n "$port_nginx" ] || die "could not find free ports"

# ---- the three servers ---------------------------------------------------------------------------

server_pid=""
server_url=""

start_shoal() {
  local logfile="$tmp/shoal.log" out
  # shellcheck disable=SC2086  # SHOAL_NODE_ARGS is a list of words
  start shoal "$logfile" "$SHOAL_BIN" node --data-dir "$tmp/shoal-data" --http-port "$port_shoal_http" \
    --zmq-port "$port_shoal_zmq" --grpc-port 0 --cluster-port "$port_shoal_cluster" $SHOAL_NODE_ARGS
  server_pid=$started_pid
  server_url="http://127.0.0.1:$port_shoal_http$infer_path"
  wait_http shoal "$server_pid" "$logfile" "http://127.0.0.1:$port_shoal_http/v2/health/live"
  if ! out=$("$SHOAL_BIN" snapshot push "$model_id" "$model" --node "127.0.0.1:$port_shoal_zmq" 2>&1); then
    show_log "$logfile"
    die "shoal snapshot push failed: $out"
  fi
  log "pushed $model_id: $out"
  verify shoal "$server_pid" "$logfile" "$server_url"
}

start_fastapi() {
  local name="${1:-fastapi}" nodelay="${2:-1}"
  local logfile="$tmp/$name.log"
  start "$name" "$logfile" env BENCH_MODEL="$model" BENCH_MODEL_NAME="$model_id" BENCH_MODEL_VERSION=1 \
    BENCH_TCP_NODELAY="$nodelay" \
    "$PYTHON" -m uvicorn bench.fastapi_server:app --app-dir "$root" --workers 2 \
    --host 127.0.0.1 --port "$port_fastapi" --no-access-log --log-level warning
  server_pid=$started_pid
  server_url="http://127.0.0.1:$port_fastapi$infer_path"
  wait_http "$name" "$server_pid" "$logfile" "http://127.0.0.1:$port_fastapi/v2/health/live"
  verify "$name" "$server_pid" "$logfile" "$server_url"
}
start_fastapi-stock() { start_fastapi fastapi-stock 0; }

start_nginx() {
  local logfile="$tmp/nginx/error.log" reply
  mkdir -p "$tmp/nginx"
  # The fixed reply is the real answer to the probe text, rendered like the FastAPI server renders it.
  reply=$(BENCH_MODEL="$model" BENCH_MODEL_NAME="$model_id" "$PYTHON" "$root/bench/fastapi_server.py" \
            --render "$probe_text" --top-k "$TOP_K") || die "could not render nginx's fixed reply"
  [[ "$reply" == *'$'* ]] && die "the fixed reply contains '\$', which nginx would read as a variable"
  reply=${reply//\\/\\\\}
  reply=${reply//\'/\\\'}
  cat >"$tmp/nginx/nginx.conf" <<EOF
# generated by bench/run_http.sh
worker_processes $NGINX_WORKERS;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port_nginx;
    location = $infer_path {
      default_type application/json;
      if (\$request_method != POST) { return 405; }
      return 200 '$reply';
    }
    location / { return 404; }
  }
}
EOF
  nginx -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" ||
    { show_log "$logfile"; die "nginx rejected the generated config $tmp/nginx/nginx.conf"; }
  start nginx "$tmp/nginx/stderr.log" nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf"
  server_pid=$started_pid
  server_url="http://127.0.0.1:$port_nginx$infer_path"
  wait_http nginx "$server_pid" "$logfile" "http://127.0.0.1:$port_nginx/"
  verify nginx "$server_pid" "$logfile" "$server_url"
}

# ---- measuring -----------------------------------------------------------------------------------

wrk_cmd=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$root/bench/infer.lua")

# parse_wrk FILE : prints "rps p50_ms p99_ms non2xx socket_errors requests" from wrk's output.
parse_wrk() {
  awk '
    function ms(v,   n) {
      n = v + 0
      if (v ~ /us$/) return n / 1000
      if (v ~ /ms$/) return n
      if (v ~ /[0-9]s$/) return n * 1000
      if (v ~ /m$/) return n * 60000
      if (v ~ /h$/) return n * 3600000
      return -1
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    /requests in/ { total = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ {
      line = $0; sub(/.*Socket errors:/, "", line); gsub(/[^0-9]+/, " ", line)
      n = split(line, parts, " "); for (i = 1; i <= n; i++) errs += parts[i]
    }
    END {
      if (rps == "" || p50 == "" || p99 == "" || p50 < 0 || p99 < 0) exit 1
      printf "%s %.3f %.3f %d %d %d\n", rps, p50, p99, non2xx + 0, errs + 0, total + 0
    }' "$1"
}

# run_wrk OUTFILE ARGS... : wrk in the background and waited for, so a signal is handled at once.
run_wrk() {
  local outfile="$1" rc=0
  shift
  "${wrk_prefix[@]}" wrk "$@" >"$outfile" 2>&1 &
  wrk_pid=$!
  wait "$wrk_pid" || rc=$?
  wrk_pid=""
  return "$rc"
}

declare -A rps=() p50=() p99=() non2xx=() sockerr=() total=()
measured=()

bench_one() {
  local name="$1" raw="$tmp/wrk-$1.txt" fields
  log "$name: warm-up $WARMUP"
  run_wrk "$tmp/wrk-$name.warmup.txt" -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$root/bench/infer.lua" \
    "$server_url" || { cat "$tmp/wrk-$name.warmup.txt" >&2; die "wrk warm-up against $name failed"; }
  kill -0 "$server_pid" 2>/dev/null || die "$name died during the warm-up"
  log "$name: measuring $DURATION: ${wrk_cmd[*]} $server_url"
  run_wrk "$raw" "${wrk_cmd[@]:1}" "$server_url" || { cat "$raw" >&2; die "wrk against $name failed"; }
  kill -0 "$server_pid" 2>/dev/null || die "$name died during the measurement"
  fields=$(parse_wrk "$raw") || { cat "$raw" >&2; die "could not parse wrk's output for $name"; }
  read -r "rps[$name]" "p50[$name]" "p99[$name]" "non2xx[$name]" "sockerr[$name]" "total[$name]" <<<"$fields"
  log "$name: ${total[$name]} requests, ${rps[$name]} requests/s, p50 ${p50[$name]} ms, p99 ${p99[$name]} ms, non-2xx ${non2xx[$name]}, socket errors ${sockerr[$name]}"
  [ "${non2xx[$name]}" -eq 0 ] || log "WARNING: $name answered ${non2xx[$name]} requests with a non-2xx status"
  measured+=("$name")
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for s in $SERVERS; do
  log "== $s"
  "start_$s"
  bench_one "$s"
  stop_group "$server_pid"
  log "stopped $s"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report --------------------------------------------------------------------------------------

top_label() {  # the first label in a V2 answer
  "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["outputs"][0]["data"][0])' "$1" 2>/dev/null ||
    echo "?"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf (r >= 1 ? "%.1f" : "%.3f"), r }'; }
meets() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "meets" : "MISSES" }'; }
has() { [ -n "${rps[$1]:-}" ]; }

label_for() {
  case "$1" in
    shoal)
      if [ -n "$SHOAL_NODE_ARGS" ]; then echo "Shoal (\`shoal node $SHOAL_NODE_ARGS\`)"
      else echo "Shoal (\`shoal node\`, defaults: $(( $(nproc) < 2 ? 2 : $(nproc) )) HTTP threads)"; fi ;;
    fastapi) echo "FastAPI + uvicorn, 2 workers ($uvicorn_impl, TCP_NODELAY set)" ;;
    fastapi-stock) echo "FastAPI + uvicorn, 2 workers, out of the box (Nagle on)" ;;
    nginx) echo "nginx, $NGINX_WORKERS workers, fixed reply (ceiling)" ;;
  esac
}
uvicorn_impl=$("$PYTHON" - <<'EOF' 2>/dev/null || echo "?"
import importlib.util as u
loop = "uvloop" if u.find_spec("uvloop") else "asyncio"
http = "httptools" if u.find_spec("httptools") else "h11"
print(f"{loop} + {http}")
EOF
)

report="$tmp/report.md"
{
  echo "# HTTP benchmark: Shoal vs FastAPI vs nginx"
  echo
  echo "POST \`$infer_path\`, one short text per request (KServe V2 JSON, top_k $TOP_K), wrk $CONNECTIONS connections / $THREADS threads, $DURATION per server after a $WARMUP warm-up, loopback."
  echo
  echo "| server | requests/s | p50 (ms) | p99 (ms) | non-2xx | socket errors |"
  echo "|---|---:|---:|---:|---:|---:|"
  for s in "${measured[@]}"; do
    printf '| %s | %.0f | %.3f | %.3f | %d | %d |\n' "$(label_for "$s")" "${rps[$s]}" "${p50[$s]}" "${p99[$s]}" \
      "${non2xx[$s]}" "${sockerr[$s]}"
  done
  echo
  if has shoal && has fastapi; then
    r=$(ratio "${rps[shoal]}" "${rps[fastapi]}")
    echo "- shoal/fastapi: **${r}x** requests/s (target >= 30x: $(meets "$r" 30))"
  fi
  if has shoal && has fastapi-stock; then
    r=$(ratio "${rps[shoal]}" "${rps[fastapi-stock]}")
    echo "- shoal/fastapi-stock: **${r}x** requests/s (target >= 30x: $(meets "$r" 30))"
  fi
  if has nginx && has fastapi; then
    r=$(ratio "${rps[nginx]}" "${rps[fastapi]}")
    echo "- for scale, nginx/fastapi: ${r}x (the ceiling against the baseline)"
  fi
  if has shoal && has nginx; then
    r=$(ratio "${rps[shoal]}" "${rps[nginx]}")
    echo "- shoal/nginx: **${r}x** requests/s (target >= 0.25x: $(meets "$r" 0.25))"
  fi
  if ! has shoal; then echo "- Shoal was not measured (SERVERS=\"$SERVERS\"): no ratios."; fi
  if has shoal && has fastapi; then
    a=$(top_label "$tmp/shoal.probe.json"); b=$(top_label "$tmp/fastapi.probe.json")
    if [ "$a" = "$b" ]; then same="same"; else same="DIFFERENT"; fi
    echo "- top label for \"$probe_text\": shoal '$a', fastapi '$b' ($same)"
  fi
  if has fastapi || has fastapi-stock; then
    echo '- fastapi: uvicorn --workers N leaves Nagle on for keep-alive connections (Kludex/uvicorn#3149, ~40ms per response); the `fastapi` row sets TCP_NODELAY (BENCH_TCP_NODELAY=1) so it is not measuring that bug, the `fastapi-stock` row is uvicorn as shipped.'
  fi
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- nproc: $(nproc); load average before/after: $load_before / $load_after (wrk shares the machine with the servers)"
  echo "- command: \`$invoked\` (DURATION=$DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS THREADS=$THREADS TOP_K=$TOP_K SERVERS=\"$SERVERS\" SHOAL_BIN=$SHOAL_BIN)"
  echo "- wrk per server: \`${wrk_cmd[*]} http://127.0.0.1:PORT$infer_path\`"
  echo "- model: \`fasttext supervised -input examples/intents-v2.txt -dim 32 -bucket 20000 -wordNgrams 2 -minn 2 -maxn 4 -loss softmax -epoch 25 -lr 0.5 -thread 1 -seed 1\`"
  echo
  echo "<details><summary>raw wrk output</summary>"
  echo
  for s in "${measured[@]}"; do
    echo "#### $s"
    echo
    echo '```'
    cat "$tmp/wrk-$s.txt"
    echo '```'
    echo
  done
  echo "</details>"
} >"$report"

mkdir -p "$(dirname "$OUT")"
cp "$report" "$OUT"
cat "$report"
log "report written to $OUT"
