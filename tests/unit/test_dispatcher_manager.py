"""The dispatcher's runs in-process, against a chat server in the test's loop: one run per id
under concurrent starts, the event loop kept free during big uploads, stored specs read explicitly."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from anesbench import errors
from anesbench.dispatcher import specs
from anesbench.dispatcher.runs import DispatcherSettings, Runs
from anesbench.dispatcher.server import DispatcherServicer
from anesbench.dispatcher.specs import SPEC_VERSION, DatasetRef, StoredSpec, uploaded_dataset
from anesbench.engine.config import RunConfig, open_store, run_record
from anesbench.grader import LocalGrader
from anesbench.prompts import load_template
from anesbench.serving import CLIENT_OPTIONS, build_server
from anesbench.store import RunRecord, Store
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import ABANDONED
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.v1 import dispatcher_pb2_grpc
from anesbench.wire.convert import spec_to_pb
from tests.conftest import LETTERS, make_records
from tests.nettools import ChatServer


@pytest.fixture
async def origin() -> AsyncIterator[ChatServer]:
    async with ChatServer(latency=0.005) as server:
        yield server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    astore = AsyncStore(Store(tmp_path / "d.duckdb"))
    yield astore
    await astore.close()


def _manager(store: AsyncStore) -> Runs:
    return Runs(store, LocalGrader(), DispatcherSettings(host="127.0.0.1", port=0, grader="-", db="-"), None)


def _config(origin: ChatServer, **changes: Any) -> RunConfig:
    base = RunConfig(model="m", endpoints=(f"http://127.0.0.1:{origin.port}/v1",), run_id="same", concurrency=2)
    return dataclasses.replace(base, **changes)


def _chats(origin: ChatServer) -> list[tuple[str, dict[str, str]]]:
    """The chat requests (not the preflight's GET /health and /v1/models)."""
    return [request for request in origin.requests if request[0].startswith("POST ")]


async def _final(manager: Runs, run_id: str) -> RunRecord:
    snapshots = [run async for run, _rate in manager.watch(run_id)]
    return snapshots[-1]


# --- one id, one run ---------------------------------------------------------------------------------
async def test_two_concurrent_start_runs_with_one_id_make_exactly_one_run(
    origin: ChatServer, store: AsyncStore
) -> None:
    manager = _manager(store)
    records = make_records(20)
    first, second = await asyncio.gather(manager.start(_config(origin), None, upload=("u", records)),
                                         manager.start(_config(origin), None, upload=("u", records)))
    assert first.id == second.id == "same"
    final = await _final(manager, "same")
    assert (final.status, final.done, final.total) == ("completed", 20, 20)
    assert len(_chats(origin)) == 20  # each item sent once: not two runs doubling the inference cost
    assert [run.id for run in await manager.list()] == ["same"]


async def test_concurrent_start_runs_with_one_id_and_different_specs_one_conflicts(
    origin: ChatServer, store: AsyncStore
) -> None:
    manager = _manager(store)
    records = make_records(10)
    outcomes = await asyncio.gather(
        manager.start(_config(origin), None, upload=("u", records)),
        manager.start(_config(origin, max_tokens=100), None, upload=("u", records)),
        return_exceptions=True,
    )
    conflicts = [o for o in outcomes if isinstance(o, errors.ConfigConflict)]
    runs = [o for o in outcomes if isinstance(o, RunRecord)]
    assert len(conflicts) == 1 and len(runs) == 1, outcomes
    assert conflicts[0].field == "run_id"
    assert (await _final(manager, "same")).done == 10
    assert len(_chats(origin)) == 10


async def test_a_start_that_fails_validation_frees_the_id(origin: ChatServer, store: AsyncStore) -> None:
    manager = _manager(store)
    bad = make_records(3)
    bad[1]["answer"] = "Z"
    with pytest.raises(errors.InvalidInput, match="upload item #1"):
        await manager.start(_config(origin), None, upload=("u", bad))
    run = await manager.start(_config(origin), None, upload=("u", make_records(3)))
    assert run.id == "same" and (await _final(manager, "same")).status == "completed"


# --- the event loop stays free -----------------------------------------------------------------------
def _pb_item(record: dict[str, Any]) -> pb.Item:
    letters = LETTERS[: record["choice_num"]]
    texts = {lang: pb.LocalizedQuestion(question=record[f"{lang}_question"],
                                        options={letter: record[f"{lang}_{letter}"] for letter in letters})
             for lang in ("en", "zh")}
    return pb.Item(id=record["id"], choice_num=record["choice_num"], answer=record["answer"], level=record["level"],
                   texts=texts)


async def _first_event(events: list[pb.RunEvent]) -> None:
    while not events:
        await asyncio.sleep(0.01)


async def test_watch_run_keeps_delivering_while_a_large_upload_is_validated(
    origin: ChatServer, store: AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _manager(store)
    server = build_server()
    dispatcher_pb2_grpc.add_DispatcherServicer_to_server(DispatcherServicer(manager), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    events: list[pb.RunEvent] = []
    during: list[int] = []
    real = uploaded_dataset
    loop_thread = threading.current_thread()

    def watched(name: str, records: Any, languages: Any) -> Any:
        assert threading.current_thread() is not loop_thread  # validation and hashing run off the loop
        before = len(events)
        result = real(name, records, languages)
        # Hold the validation open until the busy run's stream has delivered (bounded): on the event
        # loop this could never happen, and the test fails after the deadline.
        deadline = time.monotonic() + 30
        while len(events) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        during.append(len(events) - before)
        return result

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CLIENT_OPTIONS) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        busy = _config(origin, run_id="busy", concurrency=1)
        await manager.start(busy, None, upload=("busy", make_records(400)))

        async def watch() -> None:
            async for event in stub.WatchRun(pb.WatchRunRequest(run_id="busy")):
                events.append(event)

        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(_first_event(events), 30)
        monkeypatch.setattr(specs, "uploaded_dataset", watched)
        big = pb.StartRunRequest(run_id="big", spec=spec_to_pb(_config(origin, run_id="big"), None))
        big.upload.name = "big"
        big.upload.items.extend(_pb_item(r) for r in make_records(20_000))
        started = await stub.StartRun(big, timeout=120)
        assert started.id == "big" and started.total == 20_000
        assert during and during[0] >= 1, during  # the busy run's progress kept flowing during the upload
        await manager.cancel("big")
        await manager.cancel("busy")
        await asyncio.wait_for(watcher, 30)
    await server.stop(None)


# --- stored specs -------------------------------------------------------------------------------------
def test_stored_spec_round_trip_and_version() -> None:
    config = RunConfig(model="m", endpoints=("http://127.0.0.1:1/v1",), languages=("en", "zh"), run_id="r")
    spec = StoredSpec(config, None, DatasetRef(name="anesbench"))
    data = json.loads(spec.to_json())
    assert data["version"] == SPEC_VERSION
    assert StoredSpec.from_dict(data) == spec
    legacy = {k: v for k, v in data.items() if k != "version"}  # written before specs had a version
    assert StoredSpec.from_dict(legacy) == spec


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d["config"].update(beam_width=4), "config.beam_width: unknown field"),
        (lambda d: d.update(version=99), "version: schema version 99 is not one this dispatcher reads"),
        (lambda d: d["config"].update(max_tokens="many"), "config.max_tokens: expected an integer, got 'many'"),
        (lambda d: d["config"].update(max_tokens=0), "config.max_tokens: must be from 1 to 1000000, got 0"),
        (lambda d: d["config"].pop("model"), "config.model: missing"),
        (lambda d: d.update(dataset={"name": None, "upload_sha256": None}), "dataset: exactly one of"),
    ],
)
def test_a_stored_spec_that_does_not_fit_names_the_field(mutate: Any, reason: str) -> None:
    config = RunConfig(model="m", endpoints=("http://127.0.0.1:1/v1",), run_id="r")
    data = json.loads(StoredSpec(config, None, DatasetRef(name="anesbench")).to_json())
    mutate(data)
    with pytest.raises(errors.InvalidInput) as caught:
        StoredSpec.from_dict(data)
    assert str(caught.value).startswith(reason)


async def _store_unfinished(store: AsyncStore, run_id: str, config: RunConfig, records: list[dict[str, Any]],
                            spec_text: str | None = None) -> None:
    template = load_template(None)
    dataset, text = uploaded_dataset("u", records, config.languages)
    await store.call(Store.save_upload, dataset.sha256, dataset.name, text)
    await store.call(Store.begin_run, run_record(run_id, config, dataset, template))
    spec = StoredSpec(config, None, DatasetRef(upload_sha256=dataset.sha256)).to_json()
    await store.call(Store.save_spec, run_id, spec_text if spec_text is not None else spec)


@pytest.mark.parametrize(
    ("spec_text", "reason"),
    [
        ("{not json", "the stored run spec cannot be read: spec: not JSON: Expecting property name enclosed in "
                      "double quotes: line 1 column 2 (char 1)"),
        (json.dumps({"version": 1, "config": {"model": "m", "endpoints": ["http://127.0.0.1:1/v1"], "beam_width": 4},
                     "prompt_template": None, "dataset": {"name": "x", "upload_sha256": None}}),
         "the stored run spec cannot be read: config.beam_width: unknown field (written by another anesbench "
         "version)"),
        (json.dumps([1, 2]), "the stored run spec cannot be read: spec: expected an object, got list"),
    ],
)
async def test_an_unreadable_stored_spec_fails_that_run_alone_and_the_rest_resume(
    origin: ChatServer, store: AsyncStore, spec_text: str, reason: str
) -> None:
    records = make_records(6)
    await _store_unfinished(store, "good", _config(origin, run_id="good"), records)
    await _store_unfinished(store, "bad", _config(origin, run_id="bad"), records, spec_text)
    manager = _manager(store)  # a restarted dispatcher
    assert await manager.resume_unfinished() == ["good"]
    bad = await manager.get("bad")
    assert bad.status == "failed" and bad.error == f"resume failed: {reason}"
    good = await _final(manager, "good")
    assert (good.status, good.done, good.total) == ("completed", 6, 6)


async def test_a_resumed_run_whose_upload_is_gone_fails_with_that_reason(origin: ChatServer, store: AsyncStore) -> None:
    config = _config(origin, run_id="lost")
    dataset, _text = uploaded_dataset("u", make_records(3), config.languages)
    await store.call(Store.begin_run, run_record("lost", config, dataset, load_template(None)))
    await store.call(Store.save_spec, "lost",
                     StoredSpec(config, None, DatasetRef(upload_sha256=dataset.sha256)).to_json())
    manager = _manager(store)  # the upload was never kept
    assert await manager.resume_unfinished() == []
    lost = await manager.get("lost")
    assert (lost.status, lost.error) == ("failed", f"resume failed: upload {dataset.sha256} is missing from the store")


async def test_an_embedded_run_left_running_in_the_file_is_marked_abandoned_and_not_resumed(
    origin: ChatServer, tmp_path: Path
) -> None:
    config = _config(origin, run_id="embedded")
    dataset, _text = uploaded_dataset("u", make_records(3), config.languages)
    killed = Store(tmp_path / "e.duckdb")
    killed.begin_run(run_record("embedded", config, dataset, load_template(None)))  # no spec: not a dispatcher's
    killed.close()
    abandoned: list[str] = []
    store = AsyncStore(open_store(str(tmp_path / "e.duckdb"), abandoned=abandoned.append))  # a dispatcher opens it
    try:
        manager = _manager(store)
        assert await manager.resume_unfinished() == []
        embedded = await manager.get("embedded")
        assert (embedded.status, embedded.error, abandoned) == ("failed", ABANDONED, ["embedded"])
    finally:
        await store.close()


async def test_a_completed_run_started_again_with_the_same_spec_is_returned_without_sending(
    origin: ChatServer, store: AsyncStore
) -> None:
    manager = _manager(store)
    records = make_records(4)
    await manager.start(_config(origin), None, upload=("u", records))
    assert (await _final(manager, "same")).status == "completed"
    sent = len(_chats(origin))
    again = await manager.start(_config(origin), None, upload=("u", records))
    assert (again.status, again.done, len(_chats(origin))) == ("completed", 4, sent)
    assert [run.id for run in await manager.list()] == ["same"]
