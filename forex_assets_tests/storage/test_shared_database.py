"""Which locations the shared database opens, and which it refuses before touching disk."""

import pytest

from forex_assets.storage.shared_database import (
    SharedDatabase,
    UnsupportedDatabaseError,
    is_postgres,
)


@pytest.mark.parametrize(
    ("location", "postgres"),
    [
        ("postgresql://trader:pw@db.internal/forex", True),
        ("postgres://db.internal/forex", True),
        ("risk_ledger.sqlite", False),
        ("/srv/forex/trading/risk_ledger.sqlite", False),
        ("C:\\forex\\risk_ledger.sqlite", False),
        ("ledgers/a:b.sqlite", False),
    ],
)
def test_postgres_urls_and_file_paths_are_told_apart(location, postgres):
    assert is_postgres(location) is postgres


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("mysql://trader:hunter2@db/forex", "'mysql://trader:***@db/forex' is a mysql:// URL"),
        ("sqlite:///tmp/ledger.sqlite", "'sqlite:///tmp/ledger.sqlite' is a sqlite:// URL"),
    ],
)
def test_other_urls_are_refused_without_creating_a_file(tmp_path, monkeypatch, location, shown):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedDatabaseError) as info:
        SharedDatabase(location, "CREATE TABLE t (x INTEGER)")
    message = str(info.value)
    assert message.startswith(shown)
    assert "postgresql://" in message and "SQLite file path" in message
    assert "hunter2" not in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []
