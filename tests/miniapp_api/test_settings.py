from __future__ import annotations

import base64
from pathlib import Path

import pytest

from miniapp_api.settings import Settings, SettingsError


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"SUBAN_VAR_DIR": str(tmp_path)} | values


def test_embedded_default_with_nothing_set(tmp_path: Path) -> None:
    s = Settings.from_env(_env(tmp_path))
    # The SQLite file lives in the var folder (``var/`` unless SUBAN_VAR_DIR moves it).
    assert s.database_url == f"sqlite://{tmp_path}/suban.sqlite3"
    key = base64.b64encode(b"k" * 32).decode()
    default = Settings.from_env({"SUBAN_PII_KEYS": f"v1:{key}"})
    assert default.database_url == "sqlite://var/suban.sqlite3"
    assert s.embedded_redis
    assert s.simulator
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8000, 1)
    assert s.api_bases() == (
        "http://127.0.0.1:8000/_sim/wechat",
        "http://127.0.0.1:8000/_sim/wecom",
    )
    # A PII key is generated once into var/ and reused, never regenerated.
    assert len(s.pii_keys) == 1
    assert len(s.pii_keys[0].key) == 32
    assert Settings.from_env(_env(tmp_path)).pii_keys == s.pii_keys
    assert (tmp_path / "pii-key.aes-256-gcm").stat().st_mode & 0o077 == 0


def test_each_bad_value_gets_its_own_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            _env(
                tmp_path,
                SUBAN_PORT="abc",
                SUBAN_WORKERS="0",
                SUBAN_DATABASE_URL="mysql://x/y",
                SUBAN_SIMULATOR="maybe",
                SUBAN_PII_CIPHER="rot13",
            )
        )
    lines = caught.value.lines
    assert lines == [
        "SUBAN_DATABASE_URL=mysql://x/y: must be a URL starting with sqlite://, postgres://, "
        "postgresql://, asyncpg://",
        "SUBAN_PORT=abc: must be a whole number from 1 to 65535",
        "SUBAN_WORKERS=0: must be a whole number from 1 to 64",
        "SUBAN_SIMULATOR=maybe: must be 1 or 0 (true/false, yes/no, on/off)",
        "SUBAN_PII_CIPHER=rot13: must be one of aes-256-gcm, sm4-gcm",
    ]


def test_secrets_are_not_echoed_in_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_env(tmp_path, SUBAN_PII_KEYS="v1:c2hvcnQ="))
    assert caught.value.lines == [
        "SUBAN_PII_KEYS=<hidden>: must be v1:<base64 of 32 bytes>,v2:<...> for aes-256-gcm"
    ]
    assert "c2hvcnQ" not in str(caught.value)


def test_the_demo_staff_password_is_read_but_never_shown(tmp_path: Path) -> None:
    assert Settings.from_env(_env(tmp_path)).demo_staff_password == "suban-demo"
    s = Settings.from_env(_env(tmp_path, SUBAN_DEMO_STAFF_PASSWORD="another demo pw"))
    assert s.demo_staff_password == "another demo pw"
    assert "another demo pw" not in repr(s)
    assert "another demo pw" not in str(s)


def test_pii_keys_parse_with_versions_and_cipher_sizes(tmp_path: Path) -> None:
    k16 = base64.b64encode(b"a" * 16).decode()
    k32 = base64.b64encode(b"b" * 32).decode()
    s = Settings.from_env(_env(tmp_path, SUBAN_PII_CIPHER="sm4-gcm", SUBAN_PII_KEYS=f"v1:{k16}"))
    assert [(k.version, k.key) for k in s.pii_keys] == [("v1", b"a" * 16)]
    with pytest.raises(SettingsError, match="base64 of 16 bytes"):
        Settings.from_env(_env(tmp_path, SUBAN_PII_CIPHER="sm4-gcm", SUBAN_PII_KEYS=f"v1:{k32}"))
    with pytest.raises(SettingsError, match="appears twice"):
        Settings.from_env(_env(tmp_path, SUBAN_PII_KEYS=f"v1:{k32},v1:{k32}"))


def test_sqlite_cannot_serve_several_workers(tmp_path: Path) -> None:
    env = _env(tmp_path, SUBAN_WORKERS="2", SUBAN_REDIS_URL="redis://127.0.0.1:6379/0")
    env |= {
        "SUBAN_WECHAT_API_BASE": "http://127.0.0.1:9",
        "SUBAN_WECOM_API_BASE": "http://127.0.0.1:9",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.lines == [
        "SUBAN_DATABASE_URL: SQLite takes one writer at a time; "
        "with SUBAN_WORKERS > 1 use PostgreSQL"
    ]
    postgres = env | {"SUBAN_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x"}
    assert Settings.from_env(postgres).workers == 2


def test_memory_redis_cannot_serve_several_workers(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_env(tmp_path, SUBAN_WORKERS="2"))
    assert caught.value.lines[0].startswith("SUBAN_REDIS_URL: memory:// keeps Redis inside one")


def test_production_demands_real_credentials_and_no_simulator(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_env(tmp_path, SUBAN_ENV="production"))
    text = "\n".join(caught.value.lines)
    assert "SUBAN_REDIS_URL: production needs a real Redis" in text
    assert "SUBAN_PII_KEYS: required in production" in text
    assert "SUBAN_WECHAT_SECRET: required when SUBAN_SIMULATOR=0" in text
    assert "SUBAN_WECOM_CORP_ID: required when SUBAN_SIMULATOR=0" in text
    assert "SUBAN_WECOM_AGENT_ID: required when SUBAN_SIMULATOR=0" in text
    # Production never writes a key file of its own.
    assert not list(tmp_path.glob("pii-key.*"))


def test_production_with_everything_given(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    s = Settings.from_env(
        _env(
            tmp_path,
            SUBAN_ENV="production",
            SUBAN_REDIS_URL="redis://127.0.0.1:6379/0",
            SUBAN_DATABASE_URL="postgresql://u:p@db:5432/suban",
            SUBAN_WORKERS="4",
            SUBAN_PII_KEYS=f"v1:{key},v2:{key}",
            SUBAN_WECHAT_APPID="wx123",
            SUBAN_WECHAT_SECRET="s",
            SUBAN_WECOM_CORP_ID="ww123",
            SUBAN_WECOM_SECRET="s",
            SUBAN_WECOM_AGENT_ID="1000005",
            SUBAN_WECOM_TOKEN="t",
            SUBAN_WECOM_AES_KEY="a" * 43,
        )
    )
    assert not s.simulator
    assert s.database_kind == "postgres"
    assert s.api_bases() == ("https://api.weixin.qq.com", "https://qyapi.weixin.qq.com")
    assert [k.version for k in s.pii_keys] == ["v1", "v2"]


def _production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    key = base64.b64encode(b"k" * 32).decode()
    return (
        _env(
            tmp_path,
            SUBAN_ENV="production",
            SUBAN_REDIS_URL="redis://127.0.0.1:6379/0",
            SUBAN_DATABASE_URL="postgresql://u:p@db:5432/suban",
            SUBAN_PII_KEYS=f"v1:{key}",
            SUBAN_WECHAT_APPID="wx123",
            SUBAN_WECHAT_SECRET="s",
            SUBAN_WECOM_CORP_ID="ww123",
            SUBAN_WECOM_SECRET="s",
            SUBAN_WECOM_AGENT_ID="1000005",
            SUBAN_WECOM_TOKEN="t",
            SUBAN_WECOM_AES_KEY="a" * 43,
        )
        | overrides
    )


def test_production_refuses_what_is_only_fit_for_a_laptop(tmp_path: Path) -> None:
    # The embedded stores, one clear line each.
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            _production(
                tmp_path,
                SUBAN_DATABASE_URL=f"sqlite://{tmp_path}/suban.sqlite3",
                SUBAN_REDIS_URL="memory://",
            )
        )
    text = "\n".join(caught.value.lines)
    assert (
        f"SUBAN_DATABASE_URL=sqlite://{tmp_path}/suban.sqlite3: production needs PostgreSQL" in text
    )
    assert "SUBAN_REDIS_URL=memory://: production needs a real Redis" in text
    # The simulator's published credentials, given by hand.
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            _production(
                tmp_path,
                SUBAN_WECHAT_SECRET="wx-sim-secret",
                SUBAN_WECOM_SECRET="ww-sim-secret",
                SUBAN_WECOM_TOKEN="sim-callback-token",
                SUBAN_WECOM_AES_KEY="c2ltdWxhdG9yLWFlcy1rZXktZm9yLWRldi1tb2RlLTA",
            )
        )
    lines = caught.value.lines
    assert sorted(line.split("=", 1)[0] for line in lines) == [
        "SUBAN_WECHAT_SECRET",
        "SUBAN_WECOM_AES_KEY",
        "SUBAN_WECOM_SECRET",
        "SUBAN_WECOM_TOKEN",
    ]
    assert all(
        line.endswith("the simulator's credential is not a production secret") for line in lines
    )
    assert not any("sim-secret" in line for line in lines)  # secrets are never echoed
    # The simulator itself.
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_production(tmp_path, SUBAN_SIMULATOR="1"))
    assert any("must be off in production" in line for line in caught.value.lines)


def test_production_refuses_a_generated_development_pii_key(tmp_path: Path) -> None:
    dev = Settings.from_env(_env(tmp_path)).pii_keys[0]  # the embedded default writes it
    encoded = base64.b64encode(dev.key).decode()
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_production(tmp_path, SUBAN_PII_KEYS=f"v1:{encoded}"))
    assert caught.value.lines == [
        "SUBAN_PII_KEYS=<hidden>: a generated development key is not a production key"
    ]
    # Any other key is fine beside it.
    assert Settings.from_env(_production(tmp_path)).production


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("SUBAN_DATABASE_URL", "postgres://h:notaport/db", "its port must be a whole number"),
        ("SUBAN_DATABASE_URL", "postgres://h:0/db", "its port must be a whole number"),
        ("SUBAN_DATABASE_URL", "asyncpg:///db", "names no host"),
        ("SUBAN_DATABASE_URL", "postgres://h:5432/", "names no database"),
        ("SUBAN_REDIS_URL", "redis://h:6379/abc", "its Redis database must be a number"),
        ("SUBAN_REDIS_URL", "redis://", "names no host"),
        ("SUBAN_REDIS_URL", "unix://", "names no file"),
        ("SUBAN_HOST", "bad host!", "must be an IP address or a host name"),
        ("SUBAN_HOST", "0.0.0.0", "serve it on a loopback SUBAN_HOST only"),  # noqa: S104
    ],
)
def test_bad_urls_and_hosts_are_named(tmp_path: Path, name: str, value: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_env(tmp_path, **{name: value}))
    assert len(caught.value.lines) == 1
    assert why in caught.value.lines[0]


def test_url_passwords_are_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            _env(tmp_path, SUBAN_REDIS_URL="redis://:hunter2@127.0.0.1:bad/0?password=hunter3")
        )
    assert "hunter" not in str(caught.value)
    assert caught.value.lines[0].startswith(
        "SUBAN_REDIS_URL=redis://<hidden>@127.0.0.1:bad/0?<hidden>: its port"
    )
    settings = Settings.from_env(
        _env(tmp_path, SUBAN_DATABASE_URL="postgres://u:hunter2@db:5432/suban")
    )
    assert "hunter2" not in repr(settings)


def test_ipv6_loopback_host_gives_a_usable_simulator_base(tmp_path: Path) -> None:
    s = Settings.from_env(_env(tmp_path, SUBAN_HOST="::1", SUBAN_PORT="9000"))
    assert s.api_bases()[0] == "http://[::1]:9000/_sim/wechat"


@pytest.mark.parametrize("content", ["garbage!!", "v1:@@@", "v1:YWJj"])
def test_a_damaged_dev_key_file_is_refused_not_replaced(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "pii-key.aes-256-gcm"
    key_file.write_text(content)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_env(tmp_path))
    assert caught.value.lines[0].startswith("SUBAN_VAR_DIR")
    assert "is damaged" in caught.value.lines[0]
    assert key_file.read_text() == content


def test_an_unusable_var_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SUBAN_VAR_DIR": str(blocker / "var")})
    assert caught.value.lines[0].startswith("SUBAN_VAR_DIR")
