"""The data chain against a real PostgreSQL, through the very dagster.yaml of the docker deployment.

`make test-postgres` (scripts/test_postgres.sh) starts a private server and runs these; elsewhere they run
when S2I_POSTGRES_URL points at a database they may write to, and are skipped otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg2
import pytest
from dagster import AssetKey, DagsterInstance, EventLogEntry, deserialize_value

from tests.conftest import TINY_DEMO

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
DOCKER_DAGSTER_YAML = ROOT / "docker" / "dagster.yaml"
DAGSTER = Path(sys.executable).parent / "dagster"
CHAIN = {"vegas_clips", "segments", "splits", "shards"}  # '*shards': shards and what it is made from


def postgres_env() -> dict[str, str]:
    """DAGSTER_POSTGRES_* (what docker/dagster.yaml reads) from S2I_POSTGRES_URL."""
    url = os.environ.get("S2I_POSTGRES_URL")
    if not url:
        reason = "no PostgreSQL server: set S2I_POSTGRES_URL=postgresql://user:password@host:port/db (make test-postgres does)"
        if os.environ.get("S2I_POSTGRES_REQUIRED"):
            pytest.fail(reason)
        pytest.skip(reason)
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.username:
        pytest.fail(f"S2I_POSTGRES_URL={url!r} is not postgresql://user:password@host:port/db")
    return {
        "DAGSTER_POSTGRES_HOST": parts.hostname,
        "DAGSTER_POSTGRES_PORT": str(parts.port or 5432),
        "DAGSTER_POSTGRES_USER": unquote(parts.username),
        "DAGSTER_POSTGRES_PASSWORD": unquote(parts.password or ""),
        "DAGSTER_POSTGRES_DB": parts.path.lstrip("/") or "postgres",
    }


def connect(env: dict[str, str]):
    return psycopg2.connect(
        host=env["DAGSTER_POSTGRES_HOST"],
        port=int(env["DAGSTER_POSTGRES_PORT"]),
        user=env["DAGSTER_POSTGRES_USER"],
        password=env["DAGSTER_POSTGRES_PASSWORD"],
        dbname=env["DAGSTER_POSTGRES_DB"],
        connect_timeout=10,
    )


def query(env: dict[str, str], sql: str, params: tuple = ()) -> list[tuple]:
    with connect(env) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def run_ids(env: dict[str, str]) -> set[str]:
    tables = {row[0] for row in query(env, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    return {row[0] for row in query(env, "SELECT run_id FROM runs")} if "runs" in tables else set()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dagster_cli(args: list[str], env: dict[str, str], timeout: int) -> str:
    result = subprocess.run(
        [str(DAGSTER), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"dagster {' '.join(args)} failed ({result.returncode}):\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """`dagster asset materialize --select '*shards'` on the tiny demo profile, the instance in PostgreSQL."""
    pg = postgres_env()
    root = tmp_path_factory.mktemp("postgres_chain")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(DOCKER_DAGSTER_YAML, home / "dagster.yaml")
    profile = root / "tiny.yaml"
    profile.write_text(TINY_DEMO)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "S2I_"))},
        **pg,
        "DAGSTER_HOME": str(home),
        "S2I_PROFILE": str(profile),
        "S2I_DATA_DIR": str(root / "data"),
        "S2I_EXECUTOR": "multiprocess",
    }
    before = run_ids(pg)
    # What the compose daemon does at start: name the `gpu` pool's limit explicitly.
    dagster_cli(["instance", "concurrency", "set", "gpu", "1"], env, timeout=120)
    output = dagster_cli(["asset", "materialize", "-m", "pipelines", "--select", "*shards"], env, timeout=600)
    new_runs = run_ids(pg) - before
    return pg, home, env, new_runs, output


def test_the_instance_is_docker_dagster_yaml(chain):
    _pg, home, env, _runs, _output = chain
    assert sha256(home / "dagster.yaml") == sha256(DOCKER_DAGSTER_YAML)
    old = {k: os.environ.get(k) for k in env if k.startswith("DAGSTER_POSTGRES_")}
    os.environ.update({k: env[k] for k in old})
    try:
        instance = DagsterInstance.from_config(str(home))
        storage = {
            "run": type(instance.run_storage).__name__,
            "event_log": type(instance.event_log_storage).__name__,
            "schedule": type(instance.schedule_storage).__name__,
        }
        assert storage == {
            "run": "PostgresRunStorage",
            "event_log": "PostgresEventLogStorage",
            "schedule": "PostgresScheduleStorage",
        }
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
        shards = instance.get_latest_materialization_event(AssetKey("shards"))
        assert shards is not None and shards.run_id in chain[3]
        instance.dispose()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_runs_and_materializations_are_in_postgres(chain):
    pg, _home, _env, new_runs, output = chain
    assert len(new_runs) == 1, (
        f"expected one new run in PostgreSQL, found {sorted(new_runs)}\n{output[-2000:]}"
    )
    (run_id,) = new_runs
    assert query(pg, "SELECT status FROM runs WHERE run_id = %s", (run_id,)) == [("SUCCESS",)]

    rows = query(
        pg,
        "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        (run_id,),
    )
    materialized = [AssetKey(json.loads(key)).to_user_string() for (key,) in rows]
    assert sorted(materialized) == sorted(CHAIN), materialized

    rows = query(
        pg,
        "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_CHECK_EVALUATION'",
        (run_id,),
    )
    checks = [deserialize_value(event, EventLogEntry).dagster_event.event_specific_data for (event,) in rows]
    assert {check.check_name for check in checks} >= {"split_counts_exact", "shards_readable"}
    assert all(check.passed for check in checks), [c.check_name for c in checks if not c.passed]
    assert query(pg, "SELECT concurrency_key, count(*) FROM concurrency_slots GROUP BY 1") == [("gpu", 1)]
