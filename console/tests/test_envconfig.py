import pytest

from console.envconfig import (
    ImproperSetting,
    env_bool,
    env_float,
    env_int,
    env_list,
    parse_database_url,
    parse_redis_url,
    redis_url_with_db,
)


def test_booleans_accept_only_clear_words():
    assert env_bool("X", False, {"X": "yes"}) is True
    assert env_bool("X", True, {"X": "0"}) is False
    assert env_bool("X", True, {}) is True
    with pytest.raises(ImproperSetting, match=r"X='maybe' is not a boolean"):
        env_bool("X", False, {"X": "maybe"})


def test_integers_are_parsed_and_bounded():
    assert env_int("N", 3, {"N": " 42 "}) == 42
    with pytest.raises(ImproperSetting, match=r"N='4x' is not an integer"):
        env_int("N", 3, {"N": "4x"})
    with pytest.raises(ImproperSetting, match="below the minimum 1"):
        env_int("N", 3, {"N": "0"}, minimum=1)
    with pytest.raises(ImproperSetting, match="above the maximum 10"):
        env_int("N", 3, {"N": "11"}, maximum=10)


def test_floats_and_lists():
    assert env_float("F", 1.0, {"F": "2.5"}) == 2.5
    with pytest.raises(ImproperSetting, match="is not a number"):
        env_float("F", 1.0, {"F": "fast"})
    assert env_list("HOSTS", ["a"], {"HOSTS": "x.example, y.example,,"}) == ["x.example", "y.example"]


def test_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    from console.envconfig import env_str

    assert env_str("SECRET_KEY", "", {"SECRET_KEY_FILE": str(secret)}) == "s3cret"
    with pytest.raises(ImproperSetting, match="cannot be read"):
        env_str("SECRET_KEY", "", {"SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_postgres_url_becomes_a_django_database():
    db = parse_database_url("postgresql://alice:p%40ss@db.internal:5433/switchyard?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "switchyard", "alice", "p@ss", "db.internal", "5433",
    )  # fmt: skip
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_sqlite_url_becomes_a_file_database():
    db = parse_database_url("sqlite:////srv/switchyard/db.sqlite3")
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == "/srv/switchyard/db.sqlite3"


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://root@localhost/x", "unsupported scheme 'mysql'"),
        ("postgres://localhost", "names no database"),
        ("postgres://localhost:port/x", "malformed port"),
        ("sqlite://", "names no file"),
    ],
)
def test_malformed_database_urls_are_rejected(url, message):
    with pytest.raises(ImproperSetting, match=message):
        parse_database_url(url)


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://localhost:6379", "unsupported scheme 'http'"),
        ("redis://:6379/0", "names no host"),
        ("redis://localhost:6379/zero", "must be a number"),
        ("redis://localhost:63a9/0", "malformed port"),
    ],
)
def test_malformed_redis_urls_are_rejected(url, message):
    with pytest.raises(ImproperSetting, match=message):
        parse_redis_url(url)


def test_redis_url_can_be_moved_to_another_database():
    assert redis_url_with_db("redis://127.0.0.1:6379/0", 2) == "redis://127.0.0.1:6379/2"
    assert redis_url_with_db("unix:///tmp/r.sock?db=0", 1) == "unix:///tmp/r.sock?db=1"


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    import subprocess
    import sys

    env = {"DEBUG": "0", "SECRET_KEY": "", "VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'console.settings'; django.setup()",
        ],
        env={**env, "REDIS_URL": "redis://127.0.0.1:6379/0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is unset and DEBUG=0" in result.stderr


def test_celery_spells_unix_sockets_its_own_way():
    from console.envconfig import kombu_redis_url

    assert kombu_redis_url("unix:///srv/redis.sock?db=1") == "redis+socket:///srv/redis.sock?virtual_host=1"
    assert kombu_redis_url("redis://10.0.0.5:6379/2") == "redis://10.0.0.5:6379/2"
