"""The embedded Redis daemon: started on demand, stopped by ``manage.py stop_embedded_redis``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from console.embedded_redis import ensure_embedded_redis, server_answers


@pytest.fixture
def redis_dir():
    # A short path: unix socket names are limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="sy-redis-", dir="/tmp"))
    yield directory
    if server_answers(directory / "redis.sock"):
        from console.embedded_redis import stop_embedded_redis

        stop_embedded_redis(directory)
    shutil.rmtree(directory, ignore_errors=True)


def test_the_command_stops_a_running_embedded_server_and_says_so(redis_dir, settings, capsys):
    socket_path = ensure_embedded_redis(redis_dir)
    assert server_answers(socket_path)
    settings.EMBEDDED_REDIS = True
    settings.EMBEDDED_REDIS_DIR = redis_dir

    call_command("stop_embedded_redis")

    assert not server_answers(socket_path)
    assert f"Stopped the embedded Redis on {socket_path}" in capsys.readouterr().out
    # Its append-only data stays for the next start.
    assert (redis_dir / "appendonlydir").exists() or (redis_dir / "appendonly.aof").exists()
    call_command("stop_embedded_redis")
    assert "is not running" in capsys.readouterr().out


def test_the_command_refuses_when_a_redis_url_is_configured(settings):
    settings.EMBEDDED_REDIS = False

    with pytest.raises(CommandError, match="REDIS_URL is set"):
        call_command("stop_embedded_redis")
