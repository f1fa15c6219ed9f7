"""`anesbench datasets download`: the real download code, with the hub replaced by files we write.

No network here, so ``huggingface_hub.snapshot_download`` is swapped for a function that lays out a
repository the way the hub would (Parquet under data/, a README); everything after that is real.
"""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anesbench.dataset import load_dataset
from anesbench.dataset.download import DownloadFailed, download_dataset
from anesbench.errors import InvalidInput
from tests.conftest import make_record, make_records
from tests.procs import run_cli


def _fake_hub(monkeypatch: pytest.MonkeyPatch, files: dict[str, list[dict]]) -> list[dict]:
    calls: list[dict] = []

    def snapshot_download(**kwargs: object) -> str:
        calls.append(kwargs)
        root = Path(str(kwargs["local_dir"]))
        for name, records in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".parquet"):
                columns = sorted({key for record in records for key in record})
                pq.write_table(pa.table({c: [r.get(c) for r in records] for c in columns}), path)
            else:
                path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
        (root / "README.md").write_text("# AnesBench", encoding="utf-8")
        return str(root)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_download_validates_merges_and_publishes_one_jsonl(monkeypatch, tmp_path: Path) -> None:
    records = make_records(10)
    calls = _fake_hub(monkeypatch, {"data/test-00000.parquet": records[:6], "extra/more.jsonl": records[6:]})
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    target = download_dataset(repo_id="MiliLab/AnesBench", dest=tmp_path / "datasets", revision="v1", name="anesbench")
    assert target == tmp_path / "datasets" / "anesbench.jsonl"
    assert calls[0]["repo_type"] == "dataset" and calls[0]["revision"] == "v1" and calls[0]["token"] == "hf_secret"
    published = load_dataset(target, ["en", "zh"])
    assert sorted(item.id for item in published.items) == sorted(r["id"] for r in records)
    # no temporary file left; the source marker lets a later --skip-if-present skip the hub
    assert sorted(p.name for p in target.parent.iterdir()) == [".anesbench.source.json", "anesbench.jsonl"]


def test_a_bad_hub_file_publishes_nothing(monkeypatch, tmp_path: Path) -> None:
    bad = make_record(3)
    bad["answer"] = "Z"
    _fake_hub(monkeypatch, {"data/a.jsonl": [make_record(1), bad]})
    with pytest.raises(InvalidInput, match="field 'answer'"):
        download_dataset(repo_id="x/y", dest=tmp_path / "d", revision=None, name="anesbench")
    assert not (tmp_path / "d" / "anesbench.jsonl").exists()


def test_hub_errors_are_reported(monkeypatch, tmp_path: Path) -> None:
    def unreachable(**kwargs: object) -> str:
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(DownloadFailed, match="network is unreachable"):
        download_dataset(repo_id="x/y", dest=tmp_path, revision=None, name="anesbench")


def test_cli_refuses_a_bad_name(tmp_path: Path) -> None:
    result = run_cli("datasets", "download", "--dest", str(tmp_path), "--name", "../etc")
    assert result.returncode == 2 and "--name" in result.stderr


def test_skip_if_present_does_not_ask_the_hub_again(monkeypatch, tmp_path: Path) -> None:
    from anesbench.cli.main import main

    calls = _fake_hub(monkeypatch, {"data/a.jsonl": make_records(4)})
    dest = tmp_path / "datasets"
    args = ["datasets", "download", "--dest", str(dest), "--revision", "v1", "--skip-if-present"]
    assert main(args) == 0 and len(calls) == 1
    assert main(args) == 0 and len(calls) == 1  # present: the hub is not contacted
    assert main([*args[:-3], "--revision", "v2", "--skip-if-present"]) == 0 and len(calls) == 2  # another revision
    (dest / "anesbench.jsonl").unlink()
    assert main([*args[:-3], "--revision", "v2", "--skip-if-present"]) == 0 and len(calls) == 3  # file gone
