from __future__ import annotations

import base64
from pathlib import Path

import pytest

from miniapp_api.settings import Settings, SettingsError


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"SUBAN_VAR_DIR": str(tmp_path)} | values


def test_embedded_default_with_nothing_set(tmp_path: Path) -> None:
    s = Settings.from_env(_env(tmp_path))
    assert s.database_url == "sqlite://var/suban.sqlite3"
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


def test_pii_keys_parse_with_versions_and_cipher_sizes(tmp_path: Path) -> None:
    k16 = base64.b64encode(b"a" * 16).decode()
    k32 = base64.b64encode(b"b" * 32).decode()
    s = Settings.from_env(_env(tmp_path, SUBAN_PII_CIPHER="sm4-gcm", SUBAN_PII_KEYS=f"v1:{k16}"))
    assert [(k.version, k.key) for k in s.pii_keys] == [("v1", b"a" * 16)]
    with pytest.raises(SettingsError, match="base64 of 16 bytes"):
        Settings.from_env(_env(tmp_path, SUBAN_PII_CIPHER="sm4-gcm", SUBAN_PII_KEYS=f"v1:{k32}"))
    with pytest.raises(SettingsError, match="appears twice"):
        Settings.from_env(_env(tmp_path, SUBAN_PII_KEYS=f"v1:{k32},v1:{k32}"))


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
            SUBAN_WECOM_TOKEN="t",
            SUBAN_WECOM_AES_KEY="a" * 43,
        )
    )
    assert not s.simulator
    assert s.database_kind == "postgres"
    assert s.api_bases() == ("https://api.weixin.qq.com", "https://qyapi.weixin.qq.com")
    assert [k.version for k in s.pii_keys] == ["v1", "v2"]
