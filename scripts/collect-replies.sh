#!/usr/bin/env bash
# `make collect-replies MODEL=ALIAS [LIMIT=N]`: real replies of one pinned model (see
# testkit/anesbench_testkit/realmodel) to the first LIMIT sample questions, en and zh, under both
# prompt templates, through the real pipeline (serve, anesbench run, anesbench export), turned into
# corpus lines by scripts/collect_replies.py in tests/data/real/ALIAS.jsonl. Labels already in that
# file are kept for unchanged replies; new replies come out tagged "unlabelled" for a person to read.
# Slow (minutes per model on two cores), so never part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
MODEL=${1:?usage: collect-replies.sh MODEL LIMIT}
LIMIT=${2:?usage: collect-replies.sh MODEL LIMIT}
DATASET=data/sample/anesbench-sample.jsonl
OUT=tests/data/real/$MODEL.jsonl
WORK=$(mktemp -d)
# One thread by default: on a busy machine llama.cpp's threads wait for each other at every step
# (SmolLM2 fell from 45 to under 2 tokens/s per slot with two threads at load 5; one thread kept 15).
source scripts/realmodel-server.sh
start_real_model "$WORK" --model "$MODEL" --slots 2 --threads "${THREADS:-1}"
EXPORTS=()
for TEMPLATE in anesbench-cot anesbench-paper; do
  "$BIN/anesbench" run --endpoint "$ADDRESS/v1" --model "$MODEL" --dataset "$DATASET" --languages en,zh \
    --prompt-template "$TEMPLATE" --max-tokens 1024 --limit "$LIMIT" --request-timeout 1800 \
    --db "$WORK/replies.duckdb" --run-id "$TEMPLATE" --no-progress
  "$BIN/anesbench" export --run "$TEMPLATE" --format jsonl --db "$WORK/replies.duckdb" --out "$WORK/$TEMPLATE.jsonl"
  EXPORTS+=(--export "$TEMPLATE=$WORK/$TEMPLATE.jsonl")
done
"$BIN/python" scripts/collect_replies.py --dataset "$DATASET" --model "$MODEL" --out "$OUT" "${EXPORTS[@]}"
