#!/usr/bin/env bash
# Core scaling (issue 17): one node with --http-threads N pinned to N cores against nginx's fixed
# reply with N workers pinned to the same N cores, wrk pinned to other cores, the same run, for
# each N of THREADS_LIST. Reports req/s of both, shoal/nginx and shoal's scaling against N = 1.
# Targets: 8 threads >= 7x one thread; shoal/nginx >= 0.6 at every N.
#
# On a 16-core machine (the figures in bench/README.md "Cores"):
#   bench/cores.sh                      # N = 1 2 4 8 on CPUs 0..N-1, wrk -t8 -c256 on CPUs 8-15
# On 2 cores only N = 1 fits (node on CPU 0, wrk on CPU 1):
#   THREADS_LIST=1 WRK_CPUS=1 WRK_THREADS=1 bench/cores.sh
#
# Environment: THREADS_LIST (default "1 2 4 8"), WRK_CPUS (default 8-15), WRK_THREADS (default 8),
# CONNECTIONS (default 256), DURATION (default 10s), SHOAL_BIN (default build/shoal), OUT (the
# markdown report; default bench/results/cores.md). Uses bench/run_http.sh for each run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
THREADS_LIST="${THREADS_LIST:-1 2 4 8}"
WRK_CPUS="${WRK_CPUS:-8-15}"
WRK_THREADS="${WRK_THREADS:-8}"
CONNECTIONS="${CONNECTIONS:-256}"
DURATION="${DURATION:-10s}"
OUT="${OUT:-$root/bench/results/cores.md}"
mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rows=()
base=""
for n in $THREADS_LIST; do
  echo "cores.sh: N = $n" >&2
  SERVERS="shoal nginx" SERVER_CPUS="0-$((n - 1))" WRK_CPUS="$WRK_CPUS" THREADS="$WRK_THREADS" \
    CONNECTIONS="$CONNECTIONS" DURATION="$DURATION" NGINX_WORKERS="$n" \
    SHOAL_NODE_ARGS="--http-threads $n" OUT="$tmp/http-$n.md" "$root/bench/run_http.sh" >&2
  shoal=$(awk -F'|' '/^\| Shoal/ { gsub(/ /, "", $3); print $3 }' "$tmp/http-$n.md")
  nginx=$(awk -F'|' '/^\| nginx/ { gsub(/ /, "", $3); print $3 }' "$tmp/http-$n.md")
  [ -n "$shoal" ] && [ -n "$nginx" ] || { cat "$tmp/http-$n.md" >&2; echo "cores.sh: no figures for N = $n" >&2; exit 1; }
  [ -n "$base" ] || base=$shoal
  rows+=("$(awk -v n="$n" -v s="$shoal" -v g="$nginx" -v b="$base" \
    'BEGIN { printf "| %d | %.0f | %.0f | %.2f | %.2fx |", n, s, g, s / g, s / b }')")
done
{
  echo "### Cores: one node with --http-threads N on N cores, nginx with N workers on the same cores"
  echo
  echo "wrk -t$WRK_THREADS -c$CONNECTIONS on CPUs $WRK_CPUS, $DURATION each, POST one short text (KServe V2)."
  echo
  echo "| N | shoal req/s | nginx req/s | shoal/nginx | shoal x N=1 |"
  echo "|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT"
