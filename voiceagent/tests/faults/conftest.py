"""Fixtures of the fault suite: a private PostgreSQL cluster per session (migrated and seeded once into a template),
a fresh database cloned from it per test, and a way to start processes that are always stopped afterwards."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from voiceagent.tests.faults.harness import (
    PG_BIN,
    ManageProcess,
    PostgresCluster,
    RedisServer,
    Server,
    app_env,
    manage,
    seed,
    unique_name,
)

TEMPLATE = "va_faults_template"


def _missing_tools() -> list[str]:
    missing = [str(PG_BIN / tool) for tool in ("initdb", "pg_ctl") if not (PG_BIN / tool).exists()]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[tuple[PostgresCluster, dict[str, str]]]:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"fault suite needs {', '.join(missing)} (set PG_BIN for another PostgreSQL)")
    cluster = PostgresCluster().start()
    try:
        cluster.create_database(TEMPLATE)
        env = app_env(database_url=cluster.url(TEMPLATE))
        manage(env, "migrate", "--noinput")
        info = seed(env)
        yield cluster, info
    finally:
        cluster.stop()


@dataclass
class Deployment:
    """One test's world: its own database (a clone of the seeded template), and the processes it started."""

    pg: PostgresCluster
    database: str
    info: dict[str, str]
    redis: RedisServer | None = None
    _stoppables: list[Any] = field(default_factory=list)

    def env(self, *, openai_url: str = "http://127.0.0.1:9/v1", **overrides: str) -> dict[str, str]:
        return app_env(
            database_url=self.pg.url(self.database),
            redis_url=self.redis.url if self.redis else "",
            openai_url=openai_url,
            **overrides,
        )

    def start_redis(self) -> RedisServer:
        self.redis = RedisServer().start()
        self._stoppables.append(self.redis)
        return self.redis

    def server(self, name: str = "web", **env: str) -> Server:
        server = Server(self.env(**env), name=name)
        self._stoppables.append(server)
        return server.start()

    def manage_process(self, *args: str, **env: str) -> ManageProcess:
        process = ManageProcess(self.env(**env), *args)
        self._stoppables.append(process)
        return process

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.pg.query(self.database, sql, params)

    def stop_all(self) -> None:
        for item in reversed(self._stoppables):
            with contextlib.suppress(Exception):  # teardown must stop the rest
                item.stop()


@pytest.fixture
def deployment(pg_cluster) -> Iterator[Deployment]:
    cluster, info = pg_cluster
    cluster.thaw()  # a failed freeze test must not leave the cluster stopped
    database = cluster.create_database(unique_name("va_fault"), template=TEMPLATE)
    world = Deployment(pg=cluster, database=database, info=info)
    try:
        yield world
    finally:
        cluster.thaw()
        world.stop_all()
