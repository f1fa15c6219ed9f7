#!/usr/bin/env bash
# `make demo`: the bundled sample set end to end, locally, against the stand-in model server.
# The stand-in checks the pipeline (requests, retries, grading, storage, leaderboard); it is not a
# model, so the accuracies it produces mean nothing about any LLM.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DATASET=data/sample/anesbench-sample.jsonl
DB=${DEMO_DB:-demo.duckdb}
LOG=$(mktemp)
rm -f "$DB"
"$BIN/python" -m anesbench_testkit.standin --host 127.0.0.1 --port 0 --latency-ms 40 --jitter-ms 30 \
  --fault-rate 0.05 --fault-kinds 503,429,reset --answer-key "$DATASET" --served-model standin-demo >"$LOG" 2>&1 &
STANDIN=$!
trap 'kill $STANDIN 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$LOG" && break
  sleep 0.1
done
ENDPOINT=$(sed -n 's/^listening on //p' "$LOG" | head -n1)
[[ -n "$ENDPOINT" ]] || { cat "$LOG"; echo "stand-in server did not start" >&2; exit 1; }
echo "stand-in model server at $ENDPOINT (a pipeline check, not a model)"
"$BIN/anesbench" run --endpoint "$ENDPOINT" --model standin-demo --dataset "$DATASET" \
  --languages en,zh --concurrency 32 --db "$DB" --run-id demo
echo
"$BIN/anesbench" leaderboard --db "$DB"
