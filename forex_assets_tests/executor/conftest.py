"""A persistent Dagster instance in tmp (the repository's dagster.yaml) and a probe folder
that test steps write what they saw into."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from forex_assets_tests.executor.jobs_for_tests import PROBE_DIR_ENV

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    probes = tmp_path / "probes"
    probes.mkdir()
    monkeypatch.setenv(PROBE_DIR_ENV, str(probes))
    return home


@pytest.fixture
def instance(dagster_home):
    with dg.DagsterInstance.from_config(str(dagster_home)) as persistent:
        yield persistent
