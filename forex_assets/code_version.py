"""A fingerprint of the package's source, recorded with every model and strategy.

A model file is only reproducible with the code that trained it. The package version
alone does not change between commits of a working tree, so the fingerprint hashes every
source file of the package instead (the same tree gives the same value, with or without
git).
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


@cache
def code_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    try:
        version = metadata.version("forex_assets")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"{version}+src.{digest.hexdigest()[:12]}"
