#!/usr/bin/env bash
# bench/run.sh: every benchmark, then bench/README.md's results section and bench/plots/*.png
# regenerated from what they measured (bench/report.py). One command; about 25 minutes on 2 cores.
#
#   bench/run.sh            everything
#   bench/run.sh --quick    shorter runs (about 10 minutes), for trying the pipeline
#   bench/run.sh --report   only regenerate the report from bench/results/
#
# Installs what the benches need from Debian (scripts/deps.sh bench), builds (scripts/build.sh),
# then runs: run_http.sh (Shoal vs FastAPI vs nginx, wrk), load_curve.py (latency against offered
# load, Shoal and FastAPI, open loop), density.py at 100, 1,000 and 10,000 models, micro_batch.py,
# overload.py, bulk_push.py, tenant_isolation.py and predict_bench. Raw results go to
# bench/results/ (not committed), the log of the whole run to bench/results/run.log. A bench
# that fails is reported as missing in the README; the script then exits 1. Nothing else may run on the machine meanwhile
# (the benches share its two cores with their load generators).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
results="$root/bench/results"
mkdir -p "$results"
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  --report) exec /usr/bin/python3 "$root/bench/report.py" "$results" ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "run.sh: unexpected argument '$1' (see --help)" >&2; exit 2 ;;
esac

"$root/scripts/deps.sh" bench || exit 1
"$root/scripts/build.sh" >/dev/null || { echo "run.sh: build failed" >&2; exit 1; }

log="$results/run.log"
: > "$log"
failed=0
run() {  # run NAME COMMAND...: logs, keeps going on failure
  local name="$1"; shift
  echo "== $name: $*" | tee -a "$log" >&2
  local t0=$SECONDS
  if "$@" 2>>"$log"; then
    echo "   $name done in $((SECONDS - t0)) s" | tee -a "$log" >&2
  else
    echo "   $name FAILED (see $log)" | tee -a "$log" >&2
    failed=1
  fi
}
pkill -f "shoal node" 2>/dev/null || true
export SHOAL_BIN="$root/build/shoal"
cd "$root/bench"
echo "{\"date\": \"$(date -u +%Y-%m-%d)\"}" > "$results/run.json"
if [ $quick = 1 ]; then
  secs=3; storm=10; dur=5; pushes=3000
else
  secs=5; storm=30; dur=10; pushes=10000
fi

run http env DURATION=${dur}s OUT="$results/http.md" "$root/bench/run_http.sh"
run curve /usr/bin/python3 load_curve.py --seconds $secs --json "$results/load_curve.json"
for n in 100 1000 10000; do
  run "density-$n" /usr/bin/python3 density.py --models $n --duration $dur --cold 100 \
    --json "$results/density_$n.json"
done
run micro-batch sh -c "/usr/bin/python3 micro_batch.py --seconds $dur > '$results/micro_batch.md'"
run overload sh -c "/usr/bin/python3 overload.py --seconds $storm > '$results/overload.md'"
run bulk-push sh -c "/usr/bin/python3 bulk_push.py --models $pushes > '$results/bulk_push.md'"
run tenants sh -c "/usr/bin/python3 tenant_isolation.py > '$results/tenant_isolation.md'"
run predict sh -c "FASTTEXT_BIN=\$(command -v fasttext) '$root/build/bench/predict_bench' \
  --benchmark_min_time=0.2 > '$results/predict_bench.txt'"

/usr/bin/python3 "$root/bench/report.py" "$results" || failed=1
exit $failed
