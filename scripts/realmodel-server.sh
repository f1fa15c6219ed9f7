# Sourced by the scripts that need a real model: start_real_model WORK SERVE_ARGS... starts
# `python -m anesbench_testkit.realmodel serve SERVE_ARGS` in the background, waits until it listens and
# sets SERVER (its pid) and ADDRESS (http://127.0.0.1:PORT); an EXIT trap stops it and removes WORK.
start_real_model() {
  local work=$1
  shift
  "$BIN/python" -m anesbench_testkit.realmodel serve "$@" >"$work/server.out" 2>"$work/server.log" &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "'"$work"'"' EXIT
  for _ in $(seq 1 600); do
    grep -q "^listening on " "$work/server.out" && break
    kill -0 $SERVER 2>/dev/null || { cat "$work/server.log" >&2; echo "the real model server exited" >&2; exit 1; }
    sleep 0.2
  done
  ADDRESS=$(sed -n 's/^listening on //p' "$work/server.out" | head -n1)
  [[ -n "$ADDRESS" ]] || { tail -n 20 "$work/server.log" >&2; echo "the real model server did not start" >&2; exit 1; }
}
