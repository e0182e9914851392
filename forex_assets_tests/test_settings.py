"""Every setting is checked where it is read and refused in one line naming the variable,
through the settings module, the command line and the code location."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from forex_assets import settings

MYSQL = "mysql://trader:hunter2@db.internal/forex"
MYSQL_REFUSED = (
    f"{settings.ENV_RISK_LEDGER}='mysql://trader:***@db.internal/forex' is a mysql:// URL, "
    "which names a database this project cannot open"
)


def test_unsupported_risk_ledger_url_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv(settings.ENV_RISK_LEDGER, MYSQL)
    with pytest.raises(settings.SettingsError) as info:
        settings.risk_ledger()
    message = str(info.value)
    assert message.startswith(MYSQL_REFUSED)
    assert "hunter2" not in message and "\n" not in message


def test_relative_risk_ledger_lies_in_the_project_home(tmp_path, monkeypatch, isolated_homes):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(settings.ENV_RISK_LEDGER, "shared/risk.sqlite")
    assert settings.risk_ledger() == str(isolated_homes.resolve() / "shared" / "risk.sqlite")


@pytest.mark.parametrize(
    "location", ["postgresql://trader:pw@db.internal/forex", "/srv/forex/risk.sqlite"]
)
def test_postgres_url_and_absolute_path_are_kept(monkeypatch, location):
    monkeypatch.setenv(settings.ENV_RISK_LEDGER, f"  {location} ")
    assert settings.risk_ledger() == location


def test_unset_risk_ledger_leaves_the_default_to_the_trading_resource(monkeypatch):
    monkeypatch.setenv(settings.ENV_RISK_LEDGER, " ")
    assert settings.risk_ledger() == ""


def test_settings_error_is_one_line():
    error = settings.SettingsError("FOREX_X='a' is wrong;\n  set   it\tto b.")
    assert str(error) == "FOREX_X='a' is wrong; set it to b."
    assert isinstance(error, ValueError)


def _run(tmp_path: Path, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, settings.ENV_RISK_LEDGER: MYSQL}
    return subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )


def test_command_line_prints_a_bad_setting_as_one_error_line(tmp_path):
    result = _run(tmp_path, "forex_assets", "train", "--symbol", "EURUSD")
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {MYSQL_REFUSED}")
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("mysql*"))


def test_code_location_load_error_is_the_settings_message(tmp_path):
    result = _run(tmp_path, "dagster", "definitions", "validate", "-m", "forex_assets")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"SettingsError: {MYSQL_REFUSED}" in output
    assert not list(tmp_path.glob("mysql*"))


@pytest.mark.parametrize("folder", ["run[1]", "home*", "what?"])
def test_home_with_glob_characters_is_refused_naming_the_variable(tmp_path, monkeypatch, folder):
    monkeypatch.setenv(settings.ENV_HOME, str(tmp_path / folder))
    with pytest.raises(settings.SettingsError) as info:
        settings.storage_root()
    message = str(info.value)
    assert message.startswith(f"{settings.ENV_HOME}={str(tmp_path / folder)!r} is the project home")
    assert "glob character(s)" in message and "\n" not in message


def test_dagster_home_with_glob_characters_is_refused_naming_dagster_home(tmp_path, monkeypatch):
    monkeypatch.delenv(settings.ENV_HOME)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster[prod]"))
    with pytest.raises(settings.SettingsError, match=r"^DAGSTER_HOME='.*dagster\[prod\]' puts"):
        settings.project_home()


def test_home_with_other_punctuation_is_used_as_it_is(tmp_path, monkeypatch):
    home = tmp_path / "forex {v2} ] #1"
    monkeypatch.setenv(settings.ENV_HOME, str(home))
    assert settings.catalog_path() == home / "catalog.duckdb"


@pytest.mark.parametrize("command", [["symbols", "list"], ["query", "SELECT 1"]])
def test_every_subcommand_reading_a_bad_setting_prints_one_error_line(
    tmp_path, monkeypatch, capsys, command
):
    from forex_assets.cli import main

    monkeypatch.setenv(settings.ENV_HOME, str(tmp_path / "home[1]"))
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: {settings.ENV_HOME}=")
    assert "glob character(s) [" in err[0]
    assert not (tmp_path / "home[1]").exists()
