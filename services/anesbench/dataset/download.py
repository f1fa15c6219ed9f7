"""Fetch AnesBench from the Hugging Face Hub and publish it as one validated JSON Lines file.

Runs in the cluster (the chart's provisioning Job): ``anesbench datasets download --dest /datasets``.
The hub's files (JSON, JSON Lines or Parquet, any layout) are validated for both languages and
merged into ``DEST/NAME.jsonl``, written to a temporary file and renamed, so a dispatcher never
sees a half-written dataset.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from anesbench.dataset.load import load_dataset
from anesbench.errors import DownloadFailed, InvalidInput

DATA_SUFFIXES = (".json", ".jsonl", ".parquet")
NOT_DATA = {"dataset_infos.json", "dataset_info.json", "config.json", "state.json"}


def _snapshot(repo_id: str, revision: str | None, into: Path) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(snapshot_download(
            repo_id=repo_id, repo_type="dataset", revision=revision, local_dir=into,
            allow_patterns=[f"*{suffix}" for suffix in DATA_SUFFIXES], token=os.environ.get("HF_TOKEN") or None,
        ))
    except (HfHubHTTPError, OSError) as exc:
        raise DownloadFailed(f"download of {repo_id} failed: {exc}") from None


def data_files(root: Path) -> list[Path]:
    return sorted(
        path for path in root.rglob("*")
        if path.is_file() and path.suffix in DATA_SUFFIXES and path.name not in NOT_DATA
        and ".cache" not in path.parts
    )


def publish(files: list[Path], dest: Path, name: str) -> Path:
    """Validate ``files`` for en and zh, merge them, and atomically write ``dest/name.jsonl``."""
    if not files:
        raise InvalidInput("the downloaded dataset has no .json, .jsonl or .parquet files")
    seen: dict[str, Path] = {}
    lines: list[str] = []
    for file in files:
        for item in load_dataset(file, ("en", "zh")).items:
            if item.id in seen:
                raise InvalidInput(f"{file} (id {item.id}): field 'id': duplicate id (also in {seen[item.id]})")
            seen[item.id] = file
            record: dict[str, object] = {"id": item.id, "choice_num": item.choice_num, "answer": item.answer,
                                         "level": item.level}
            for language, text in item.texts.items():
                record[f"{language}_question"] = text.question
                record.update((f"{language}_{letter}", option) for letter, option in text.options.items())
            lines.append(json.dumps(record, ensure_ascii=False))
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{name}.jsonl"
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=dest)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def already_present(*, repo_id: str, dest: str | Path, revision: str | None, name: str) -> bool:
    """Whether ``dest/name.jsonl`` was published from this repository and revision (then the hub is not
    asked at all: an upgrade of the chart never depends on it)."""
    destination = Path(dest)
    try:
        source = json.loads((destination / f".{name}.source.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (destination / f"{name}.jsonl").is_file() and source == {"repo_id": repo_id, "revision": revision}


def download_dataset(*, repo_id: str, dest: str | Path, revision: str | None, name: str) -> Path:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput(f"{name!r} must be letters, digits, '-' or '_'", field="name")
    destination = Path(dest)
    with tempfile.TemporaryDirectory(prefix="anesbench-download-") as scratch:
        root = _snapshot(repo_id, revision, Path(scratch))
        target = publish(data_files(root), destination, name)
    marker = destination / f".{name}.source.json"  # what already_present() reads
    marker.write_text(json.dumps({"repo_id": repo_id, "revision": revision}), encoding="utf-8")
    return target
