#!/usr/bin/env bash
# /healthz of `suban serve --workers 2` against a bare Sanic route, measured in the same run.
# The machines are noisy, so the two are measured in alternation, ROUNDS times, and the ratio of the
# medians is what counts. Needs wrk (apt-get install wrk) and a real Redis (2 workers).
# Usage: bench/healthz.sh [duration_s] [rounds]    Writes bench/results/healthz-<date>.txt
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
PY=.venv/bin/python
SUBAN_PORT_=8102
BARE_PORT=8101
TMP=$(mktemp -d)
OUT="bench/results/healthz-$(date +%Y%m%d-%H%M).txt"
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"; }
PIDS=()
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

export SUBAN_ENV=production SUBAN_SIMULATOR=0 SUBAN_WORKERS=2 SUBAN_PORT=$SUBAN_PORT_
export SUBAN_VAR_DIR="$TMP" SUBAN_DATABASE_URL="sqlite://$TMP/bench.sqlite3"
export SUBAN_REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/13}
export SUBAN_PII_KEYS="v1:$($PY -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')"
export SUBAN_WECHAT_APPID=wxbench SUBAN_WECHAT_SECRET=x SUBAN_WECOM_CORP_ID=wwbench
export SUBAN_WECOM_SECRET=x SUBAN_WECOM_TOKEN=x SUBAN_WECOM_AES_KEY=$(printf 'a%.0s' $(seq 43))
.venv/bin/suban migrate >/dev/null
.venv/bin/suban serve >"$TMP/suban.log" 2>&1 & PIDS+=($!)
$PY bench/bare_app.py --port $BARE_PORT --workers 2 >"$TMP/bare.log" 2>&1 & PIDS+=($!)
for port in $SUBAN_PORT_ $BARE_PORT; do
  for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.5; done
done

rps() { wrk -t2 -c100 -d"${DURATION}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$TMP/bare" ; : >"$TMP/suban"
for i in $(seq 1 "$ROUNDS"); do
  rps "http://127.0.0.1:$BARE_PORT/healthz" >>"$TMP/bare"
  rps "http://127.0.0.1:$SUBAN_PORT_/healthz" >>"$TMP/suban"
done
BARE=$(median <"$TMP/bare"); SUBAN=$(median <"$TMP/suban")
RATIO=$(awk -v s="$SUBAN" -v b="$BARE" 'BEGIN {printf "%.2f", s / b}')
{
  echo "date: $(date -Iseconds)  host: $(nproc) cores  wrk -t2 -c100 -d${DURATION}s x ${ROUNDS} rounds, alternating"
  echo "bare sanic /healthz (2 workers) req/s: $(tr '\n' ' ' <"$TMP/bare") median $BARE"
  echo "suban serve /healthz (2 workers) req/s: $(tr '\n' ' ' <"$TMP/suban") median $SUBAN"
  echo "ratio suban/bare: $RATIO (target >= 0.90)"
} | tee "$OUT"
