"""A real PostgreSQL server on loopback for the deployment tests (one per test module)."""

import pytest

from forex_assets_tests.deploy.postgres_server import PostgresServer, PostgresUnavailable


@pytest.fixture(scope="module")
def pg_server():
    pytest.importorskip(
        "dagster_postgres", reason="dagster-postgres is not installed: pip install dagster-postgres"
    )
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed: pip install psycopg2-binary")
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as reason:
        pytest.skip(str(reason))
    try:
        yield server
    finally:
        server.stop()
