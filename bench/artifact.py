"""The deployment artifact: what `sam build` produces, zipped, in all and by package."""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

from devtools import sam_cli
from devtools.template import FUNCTION_ID

TOP_PACKAGES = 12


def artifact_sizes() -> dict[str, Any]:
    """`sam build` into a temporary directory (python3.13, arm64) and zip what it produced."""
    python = sam_cli.find_python()
    if python is None:
        return {
            "measured": False,
            "reason": f"no python{sam_cli.RUNTIME_VERSION} on this machine for `sam build`",
        }
    with tempfile.TemporaryDirectory(prefix="bench-build-") as directory:
        build_dir = pathlib.Path(directory) / "build"
        built = sam_cli.build(build_dir, python=python)
        if built.returncode != 0:
            raise RuntimeError(f"sam build failed:\n{built.stdout[-2000:]}\n{built.stderr[-2000:]}")
        sizes = sam_cli.package_sizes(build_dir / FUNCTION_ID)
    total = sizes.pop(sam_cli.TOTAL)
    largest = sorted(sizes.items(), key=lambda item: item[1], reverse=True)
    return {
        "measured": True,
        "zipped_bytes": total,
        "packages": [{"package": name, "zipped_bytes": size} for name, size in largest[:TOP_PACKAGES]],
        "other_packages_bytes": sum(size for _, size in largest[TOP_PACKAGES:]),
    }
