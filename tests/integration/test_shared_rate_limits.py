"""Rate limits on /auth count across app instances when RATELIMIT_STORAGE_URI names Redis
(issue 14 #4): two gunicorn instances, each with its own instance folder and STORAGE_DIR
and two workers, share one budget in a real redis-server on loopback."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from tests.integration.test_postgres_concurrency import Gunicorn, gunicorn_environment
from tests.servers import serve_redis

LIMIT = 6


@pytest.fixture
def redis_url(tmp_path):
    with serve_redis(tmp_path) as url:
        yield url


def failed_sign_in(server: Gunicorn, n: int) -> int:
    body = {"username": f"nobody-{n}@test.local", "password": "wrong password"}
    return requests.post(f"{server.url}/auth/token", json=body, timeout=30).status_code


@pytest.mark.slow
def test_two_instances_share_one_redis_count(live_settings, redis_url, tmp_path):
    import redis

    servers = []
    for name in ("a", "b"):
        instance = tmp_path / name / "instance"
        instance.mkdir(parents=True)
        env = gunicorn_environment(replace(live_settings, instance_path=instance))
        env.update({"RATELIMIT_STORAGE_URI": redis_url,
                    "AUTH_RATE_LIMIT_ADDRESS": f"{LIMIT} per minute",
                    "STORAGE_DIR": str(tmp_path / f"storage-{name}"),
                    "GUNICORN_PRELOAD_MODEL": "0"})
        servers.append(Gunicorn(env, tmp_path / name, workers=2))
    try:
        for server in servers:
            server.wait_ready()
        statuses = [failed_sign_in(servers[n % 2], n) for n in range(LIMIT)]
        assert 429 not in statuses, statuses
        # Each instance has seen only half the budget; the shared count is spent.
        assert [failed_sign_in(server, 100) for server in servers] == [429, 429]
        assert redis.Redis.from_url(redis_url).keys("LIMITS:LIMITER/csss/*")
    finally:
        for server in servers:
            server.stop()
