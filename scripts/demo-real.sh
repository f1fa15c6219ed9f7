#!/usr/bin/env bash
# `make demo-real`: a few questions of the bundled sample, both languages, end to end against a REAL
# tiny model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M on llama.cpp's server via xllamacpp; see
# testkit/anesbench_testkit/realmodel). Real replies, real token counts, real truncation; the model is a
# 0.5B coding assistant, so its accuracy means nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DATASET=data/sample/anesbench-sample.jsonl
DB=${DEMO_DB:-demo-real.duckdb}
LIMIT=${DEMO_LIMIT:-5}
MAX_TOKENS=${DEMO_MAX_TOKENS:-320}
SLOTS=${DEMO_SLOTS:-4}
# One thread: on a busy machine llama.cpp's threads wait for each other at every step (DEMO_THREADS=2 on an idle one).
WORK=$(mktemp -d)
LOG=$WORK/server.log
rm -f "$DB"
"$BIN/python" -m anesbench_testkit.realmodel serve --slots "$SLOTS" --slot-context 1024 --threads "${DEMO_THREADS:-1}" \
  >"$WORK/server.out" 2>"$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 600); do
  grep -q "^listening on " "$WORK/server.out" && break
  kill -0 $SERVER 2>/dev/null || { cat "$LOG" >&2; echo "the real model server exited" >&2; exit 1; }
  sleep 0.2
done
ADDRESS=$(sed -n 's/^listening on //p' "$WORK/server.out" | head -n1)
[[ -n "$ADDRESS" ]] || { tail -n 20 "$LOG" >&2; echo "the real model server did not start" >&2; exit 1; }
echo "real tiny model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M, llama.cpp, $SLOTS slots) at $ADDRESS"
if "$BIN/anesbench" run --help | grep -q -- "--limit"; then
  SUBSET=(--dataset "$DATASET" --limit "$LIMIT")
else  # a CLI without --limit: the first $LIMIT questions as their own file
  head -n "$LIMIT" "$DATASET" >"$WORK/sample-head.jsonl"
  SUBSET=(--dataset "$WORK/sample-head.jsonl")
fi
# No --concurrency: the sizing reads the server's slots from llama.cpp's /props (total_slots).
"$BIN/anesbench" run --endpoint "$ADDRESS/v1" --model qwen2.5-coder-0.5b-instruct "${SUBSET[@]}" \
  --languages en,zh --max-tokens "$MAX_TOKENS" --request-timeout 1800 --db "$DB" --run-id demo-real --no-progress
echo
"$BIN/anesbench" leaderboard --db "$DB"
