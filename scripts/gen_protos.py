#!/usr/bin/env python3
"""Generate the Python code for proto/anesbench/v1/*.proto into services/anesbench/v1/.

The one command that produces the committed ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` of the
package ``anesbench.v1``; never edit those files by hand::

    .venv/bin/python scripts/gen_protos.py          # regenerate after editing a .proto
    .venv/bin/python scripts/gen_protos.py --check  # CI: exit 1 if the committed files are stale

Output depends only on the .proto files and the grpcio-tools version (recorded in the generated
``__init__.py``), so it is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import importlib.resources
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("anesbench") / "v1"  # protobuf package anesbench.v1 == Python package anesbench.v1
OUT_DIR = ROOT / "services" / PACKAGE_DIR
GENERATED = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py", "__init__.py")
# Generated modules may import only each other and protobuf's well-known types.
ALLOWED_IMPORT_ROOTS = ("anesbench.v1", "google.protobuf")
IMPORT_RE = re.compile(r"^from (\S+) import \w+_pb2\b", re.MULTILINE)


def tools_version() -> str:
    return importlib.metadata.version("grpcio-tools")


def init_text() -> str:
    return (
        '"""Generated gRPC/protobuf code for the anesbench.v1 API. Do not edit.\n\n'
        "Sources: proto/anesbench/v1/*.proto. Regenerate with `python scripts/gen_protos.py`\n"
        f'(grpcio-tools {tools_version()}).\n"""\n'
    )


def generate() -> dict[str, str]:
    """Run protoc on every .proto; returns file name -> text of everything that belongs in OUT_DIR."""
    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    if not protos:
        raise SystemExit(f"gen_protos: no .proto files under {PROTO_ROOT / PACKAGE_DIR}")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("gen_protos: protoc failed (see the messages above)")
        files = {p.name: p.read_text(encoding="utf-8") for p in sorted((Path(tmp) / PACKAGE_DIR).iterdir())}
    for name, text in files.items():
        for module in IMPORT_RE.findall(text):
            if not module.startswith(ALLOWED_IMPORT_ROOTS):
                raise SystemExit(f"gen_protos: {name} imports {module!r}, outside {ALLOWED_IMPORT_ROOTS}")
    files["__init__.py"] = init_text()
    return files


def committed() -> dict[str, str]:
    found = sorted({p for pattern in GENERATED for p in OUT_DIR.glob(pattern)})
    return {p.name: p.read_text(encoding="utf-8") for p in found}


def check(expected: dict[str, str]) -> int:
    actual = committed()
    stale = sorted(name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name))
    if not stale:
        print(f"gen_protos: {len(expected)} generated files in {OUT_DIR.relative_to(ROOT)} are up to date")
        return 0
    for name in stale:
        diff = difflib.unified_diff(
            actual.get(name, "").splitlines(keepends=True),
            expected.get(name, "").splitlines(keepends=True),
            fromfile=f"committed/{name}",
            tofile=f"generated/{name}",
            n=1,
        )
        sys.stdout.writelines(list(diff)[:40])
    print(
        f"gen_protos: stale generated code: {', '.join(stale)}\n"
        f"  run `python scripts/gen_protos.py` (with grpcio-tools {tools_version()}) and commit the result",
        file=sys.stderr,
    )
    return 1


def write(expected: dict[str, str]) -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in committed():
        if name not in expected:
            (OUT_DIR / name).unlink()
            print(f"removed {OUT_DIR.relative_to(ROOT) / name}")
    for name, text in expected.items():
        path = OUT_DIR / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = parser.parse_args(argv)
    expected = generate()
    return check(expected) if args.check else write(expected)


if __name__ == "__main__":
    sys.exit(main())
