"""The DuckDB store: idempotent batched writes, run identity, and the leaderboard query."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from anesbench.cli.exit_codes import message_for
from anesbench.errors import ConfigConflict, NotFound, StoreBusy
from anesbench.store import ResultRow, RunRecord, Store


def _run(run_id: str = "r1", model: str = "m", config_hash: str = "h1", total: int = 6) -> RunRecord:
    return RunRecord(
        id=run_id, model=model, endpoint="http://127.0.0.1:1/v1", dataset_name="d", dataset_sha256="s",
        prompt_template="t", prompt_sha256="p", max_tokens=16, temperature=0.0, samples=1, languages=["en"],
        harness_version="0", config_hash=config_hash, total=total,
    )


def _row(run_id: str, item: str, level: int, pred: str | None, answer: str = "A", error: str | None = None,
         language: str = "en") -> ResultRow:
    return ResultRow(run_id=run_id, item_id=item, language=language, sample=0, level=level, answer=answer,
                     request_hash=f"h-{item}-{language}", response="x", attempts=1, pred=pred,
                     method="test", correct=None if error else pred == answer, error=error)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(tmp_path / "a.duckdb")
    yield db
    db.close()


def test_rewriting_a_key_never_duplicates(store: Store) -> None:
    store.begin_run(_run())
    rows = [_row("r1", f"i{n}", 1, "A") for n in range(3)]
    store.write_results(rows)
    store.write_results(rows)
    store.write_results([_row("r1", "i0", 1, "B")])
    assert len(store.results("r1")) == 3
    assert {r.item_id: r.pred for r in store.results("r1")}["i0"] == "B"


def test_error_rows_are_not_completed_and_get_replaced(store: Store) -> None:
    store.begin_run(_run())
    store.write_results([_row("r1", "i0", 1, None, error="HTTP 503"), _row("r1", "i1", 1, "A")])
    assert store.completed_keys("r1") == {("i1", "en", 0)}
    run = store.get_run("r1")
    assert (run.done, run.failed) == (1, 1)
    store.write_results([_row("r1", "i0", 1, "A")])
    assert store.completed_keys("r1") == {("i0", "en", 0), ("i1", "en", 0)}
    assert store.get_run("r1").failed == 0


def test_unfinished_runs_without_a_dispatcher_spec_are_marked_failed_as_abandoned(store: Store) -> None:
    for run_id in ("killed", "dispatched", "done"):
        store.begin_run(_run(run_id, config_hash=run_id))
    store.finish_run("done", "completed")
    store.save_spec("dispatched", "{}")  # a dispatcher's run: that dispatcher resumes it itself
    assert store.fail_abandoned() == ["killed"]
    statuses = {run.id: (run.status, run.error) for run in store.list_runs()}
    assert statuses == {
        "killed": ("failed", "the process running it stopped before it finished (killed, or the store could "
                             "not write); running it again with the same run id resumes it"),
        "dispatched": ("running", None),
        "done": ("completed", None),
    }
    assert store.fail_abandoned() == []
    store.begin_run(_run("killed", config_hash="killed"))  # the same id resumes it
    assert store.get_run("killed").status == "running"


def test_same_run_id_with_other_configuration_is_refused(store: Store) -> None:
    store.begin_run(_run())
    store.finish_run("r1", "cancelled")
    assert store.begin_run(_run()).status == "running"
    with pytest.raises(ConfigConflict) as conflict:
        store.begin_run(_run(config_hash="other"))
    assert message_for(conflict.value) == ("--run-id: a run 'r1' exists with a different configuration "
                                           "(harness version); use another id")


def test_leaderboard_counts_unanswered_in_total_not_correct(store: Store) -> None:
    store.begin_run(_run())
    store.write_results([
        _row("r1", "a", 1, "A"), _row("r1", "b", 1, "B"), _row("r1", "c", 2, None),
        _row("r1", "d", 3, "A"), _row("r1", "e", 3, "A"), _row("r1", "f", 3, None, error="timeout"),
    ])
    rows = {(r.language, r.level): r for r in store.leaderboard("r1")}
    assert [level for (_, level) in rows] == ["system1", "system1.x", "system2", "overall"]
    assert (rows["en", "system1"].correct, rows["en", "system1"].total) == (1, 2)
    assert (rows["en", "system1.x"].correct, rows["en", "system1.x"].unanswered) == (0, 1)
    overall = rows["en", "overall"]
    assert (overall.correct, overall.total, overall.unanswered) == (3, 6, 2)
    assert overall.accuracy == pytest.approx(0.5)


def test_leaderboard_defaults_to_latest_completed_run_per_model(store: Store) -> None:
    for run_id, model in (("old", "m"), ("new", "m"), ("other", "n")):
        store.begin_run(_run(run_id, model))
        store.write_results([_row(run_id, "a", 1, "A" if run_id != "old" else "B")])
        store.finish_run(run_id, "completed")
    store.begin_run(_run("running", "m"))
    assert sorted({r.run_id for r in store.leaderboard()}) == ["new", "other"]
    with pytest.raises(NotFound):
        store.leaderboard("missing")


def test_reusable_finds_answers_of_other_runs(store: Store) -> None:
    store.begin_run(_run("first"))
    store.write_results([_row("first", "a", 1, "A"), _row("first", "b", 1, None, error="boom")])
    store.begin_run(_run("second"))
    found = store.reusable("second", ["h-a-en", "h-b-en", "h-zzz"])
    assert list(found) == ["h-a-en"] and found["h-a-en"].run_id == "first"


def test_second_writer_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "locked.duckdb"
    Store(path).close()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); "
                               "print('ok', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(StoreBusy) as busy:
            Store(path)
        assert message_for(busy.value) == (f"database {path} is open in another process (a dispatcher owns it: "
                                           "use --dispatcher)")
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(duckdb.connect(str(path)), duckdb.DuckDBPyConnection)


def test_credentials_stored_by_an_older_version_are_scrubbed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    secret = "planted-secret-71ab"
    old = Store(path)
    old.save_spec("r1", '{"config": {"endpoints": ["https://alice:' + secret + '@api.example.com/v1"]}}')
    old.close()
    assert secret.encode() in path.read_bytes()  # as an older dispatcher left it
    reopened = Store(path)
    try:
        assert reopened.load_spec("r1") == '{"config": {"endpoints": ["https://api.example.com/v1"]}}'
    finally:
        reopened.close()
    assert all(secret.encode() not in p.read_bytes() for p in tmp_path.iterdir())


def test_a_reply_stored_pending_then_done_in_one_batch_is_one_row_the_last(store: Store) -> None:
    import dataclasses

    store.begin_run(_run())
    pending = _row("r1", "a", 1, None)
    pending.elicitation = "pending"
    done = dataclasses.replace(pending, pred="A", method="elicited", correct=True, elicitation="done")
    store.write_results([pending, done])
    assert [(r.pred, r.elicitation) for r in store.results("r1")] == [("A", "done")]
    assert store.pending_elicitations("r1") == 0 and store.unfinished_elicitations("r1") == []


def test_pending_and_failed_follow_ups_are_what_a_resume_finishes(store: Store) -> None:
    store.begin_run(_run())
    rows = [_row("r1", item, 1, None) for item in "abcd"]
    for row, state in zip(rows, ("pending", "failed", "done", None), strict=True):
        row.elicitation = state
    store.write_results(rows)
    assert [r.item_id for r in store.unfinished_elicitations("r1")] == ["a", "b"]
    assert store.pending_elicitations("r1") == 1  # a failed follow-up does not keep the run from completing


def test_a_file_from_before_elicitation_opens_read_only_with_the_new_columns_as_null(tmp_path: Path) -> None:
    added = ("pred_rules", "method_rules", "elicitation", "elicitation_params", "elicitation_response",
             "elicitation_error", "elicitation_attempts", "elicitation_latency_s", "elicitation_prompt_tokens",
             "elicitation_completion_tokens", "letter_probs", "letter_probs_complete")  # every results column added since
    path = tmp_path / "old.duckdb"
    store = Store(path)
    store.begin_run(_run())
    store.write_results([_row("r1", "a", 1, "A")])
    store.close()
    with duckdb.connect(str(path)) as con:  # the file as the release before the follow-up turn wrote it
        for name in added:
            con.execute(f"ALTER TABLE results DROP COLUMN {name}")
        for name in ("elicit", "elicit_prompt", "elicit_prompt_sha256", "elicit_constraint"):
            con.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    old = Store(path, read_only=True)
    try:
        (row,) = old.leaderboard("r1")[-1:]
        assert (row.elicit, row.elicited, row.accuracy_strict, row.accuracy) == ("off", 0, 1.0, 1.0)
        (exported,) = old.iter_export("r1")
        assert exported["elicited"] is False and exported["pred_rules"] == "A" and exported["elicitation"] is None
        assert old.get_run("r1").elicit == "off"
    finally:
        old.close()
    Store(path).close()  # opened for writing, the file gets the columns
    with duckdb.connect(str(path), read_only=True) as con:
        columns = {name for (name,) in con.execute("SELECT column_name FROM duckdb_columns() "
                                                    "WHERE table_name = 'results'").fetchall()}
    assert set(added) <= columns
