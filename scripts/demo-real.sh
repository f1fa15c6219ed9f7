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
rm -f "$DB"
source scripts/realmodel-server.sh
start_real_model "$WORK" --slots "$SLOTS" --slot-context 1024 --threads "${DEMO_THREADS:-1}"
echo "real tiny model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M, llama.cpp, $SLOTS slots) at $ADDRESS"
SUBSET=(--dataset "$DATASET" --limit "$LIMIT")
# No --concurrency: the sizing reads the server's slots from llama.cpp's /props (total_slots).
# Three runs of the same replies: the rules alone (--elicit off), the default (a follow-up turn where the
# rules find no answer) and --elicit all (a follow-up after every reply); --reuse answers the second
# and third from the first's stored replies, so only the follow-ups are generated again.
run() {
  "$BIN/anesbench" run --endpoint "$ADDRESS/v1" --model qwen2.5-coder-0.5b-instruct "${SUBSET[@]}" \
    --languages en,zh --max-tokens "$MAX_TOKENS" --request-timeout 1800 --db "$DB" --no-progress "$@"
}
run --run-id demo-off --elicit off
run --run-id demo-real --reuse
run --run-id demo-all --elicit all --reuse
echo
"$BIN/anesbench" leaderboard --db "$DB" --run demo-real
echo
"$BIN/anesbench" leaderboard --db "$DB" --run demo-off --run demo-real --format json >"$WORK/board.json"
"$BIN/anesbench" compare demo-all --db "$DB" --format json >"$WORK/agreement.json"
"$BIN/python" - "$WORK/board.json" "$WORK/agreement.json" <<'PY'
import json
import sys

board = json.load(open(sys.argv[1]))
agreement = json.load(open(sys.argv[2]))["rules_vs_elicited"][0]
for run, label in (("demo-off", "--elicit off (rules alone)"), ("demo-real", "--elicit unanswered (default)")):
    rows = [r for r in board if r["run_id"] == run and r["level"] == "overall"]
    unanswered, total = sum(r["unanswered"] for r in rows), sum(r["total"] for r in rows)
    elicited = sum(r["elicited"] for r in rows)
    print(f"unanswered with {label}: {unanswered}/{total} ({unanswered / total:.0%}); letters from the follow-up: {elicited}")
overall = {c["language"]: c for c in agreement["cells"] if c["level"] == "overall"}
cell = overall.get("all") or next(iter(overall.values()))  # "all": both languages together
shown = "-" if cell["agreement"] is None else f"{cell['agreement']:.0%}"
print(f"--elicit all: the rules' letter equals the model's elicited letter in {cell['same']} of {cell['both']} "
      f"replies both read ({shown}); {cell['rules_none']} more had no answer by the rules")
PY
