"""The code base stays ruff-clean: CI fails on a lint finding like on a test failure."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is installed by the [test] extra")
def test_ruff_check_is_clean():
    result = subprocess.run(
        ["ruff", "check", "forex_assets", "forex_assets_tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
