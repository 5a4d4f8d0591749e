"""Settings come from the environment (and .env) only through bot/config.py."""

from __future__ import annotations

import re
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("LONTAR_ENV", "LONTAR_HOST", "LONTAR_PORT", "LONTAR_DATA_DIR", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert (s.env, s.host, s.port, s.timezone) == (
        "development", "127.0.0.1", 8080, "Asia/Makassar")
    assert s.database_url == "sqlite:///data/lontar.db"


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LONTAR_PORT=9999\nLONTAR_HOST=0.0.0.0\n")
    monkeypatch.setenv("LONTAR_HOST", "127.0.0.2")
    s = load_settings()
    assert s.port == 9999 and s.host == "127.0.0.2"  # the environment beats .env


def test_production_refuses_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONTAR_ENV", "production")
    monkeypatch.delenv("LONTAR_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="LONTAR_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("LONTAR_SECRET_KEY", "k" * 40)
    assert load_settings().secret_key == "k" * 40


def test_development_secret_is_generated_once(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LONTAR_SECRET_KEY", raising=False)
    first = load_settings(data_dir=tmp_path).secret_key
    assert len(first) >= 32
    assert load_settings(data_dir=tmp_path).secret_key == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_bad_port_is_a_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONTAR_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"LONTAR_PORT: .*integer.*eighty"):
        load_settings()


def test_only_config_reads_the_environment() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for folder in ("bot", "flows")
        for p in (root / folder).rglob("*.py")
        if p.name != "config.py"
        and any(s in p.read_text(encoding="utf-8") for s in ("os.environ", "os.getenv"))
    ]
    assert offenders == []


# -- reverse proxies (bot/proxy.py) ---------------------------------------------------------


def test_trusted_proxies_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LONTAR_TRUSTED_PROXIES", raising=False)
    assert load_settings().trusted_proxies == ()  # default: no forwarded header is believed
    monkeypatch.setenv("LONTAR_TRUSTED_PROXIES", " 127.0.0.1, 10.0.0.1/8,::1 ,")
    assert load_settings().trusted_proxies == (
        ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"), ip_network("::1/128"))


@pytest.mark.parametrize(("value", "why"), [
    ("nginx", "'nginx' is not an IP address or network"),
    ("127.0.0.1;10.0.0.1", "is not an IP address or network"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not"),
    ("127.0.0.1, 0.0.0.0/0", "would trust every address"),
    ("::/0", "would trust every address"),
])
def test_bad_trusted_proxies_are_a_readable_error(monkeypatch: pytest.MonkeyPatch, value: str,
                                                   why: str) -> None:
    monkeypatch.setenv("LONTAR_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError, match=rf"LONTAR_TRUSTED_PROXIES: .*{re.escape(why)}"):
        load_settings()


# -- production refuses secrets too short to guard their endpoint ---------------------------

GOOD = "g" * 32
PRODUCTION = {"env": "production", "secret_key_setting": GOOD}
TELEGRAM = {"telegram_bot_token": "123:abc",
            "telegram_webhook_url": "https://lontar.example.go.id/webhooks/telegram"}
WHATSAPP = {"whatsapp_access_token": "EAAtoken", "whatsapp_phone_number_id": "1234"}


@pytest.mark.parametrize(("settings", "names", "dev_ok"), [
    ({"metrics_token": "m" * 31}, ["LONTAR_METRICS_TOKEN", "/metrics"], True),
    ({**TELEGRAM, "telegram_webhook_secret": "t" * 31},
     ["TELEGRAM_WEBHOOK_SECRET", "/webhooks/telegram"], True),
    ({**WHATSAPP, "whatsapp_app_secret": "", "whatsapp_verify_token": GOOD},
     ["WHATSAPP_APP_SECRET", "/webhooks/whatsapp"], False),  # unsigned webhooks: never
    ({**WHATSAPP, "whatsapp_app_secret": "a" * 32, "whatsapp_verify_token": "v" * 31},
     ["WHATSAPP_VERIFY_TOKEN", "/webhooks/whatsapp"], True),
    ({"secret_key_setting": "k" * 31}, ["LONTAR_SECRET_KEY"], True),
    # every problem at once, so one edit of /etc/lontar.env fixes them all
    ({"secret_key_setting": "", "metrics_token": "short", **TELEGRAM,
      "telegram_webhook_secret": "t" * 20},
     ["LONTAR_SECRET_KEY", "LONTAR_METRICS_TOKEN", "TELEGRAM_WEBHOOK_SECRET"], True),
])
def test_production_refuses_short_endpoint_secrets(settings: dict[str, Any], names: list[str],
                                                   dev_ok: bool, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsafe for production") as refused:
        load_settings(**{**PRODUCTION, **settings})
    for name in names:
        assert name in str(refused.value)
    if dev_ok:  # the length rule is production's; development keeps working with test values
        assert load_settings(**{**PRODUCTION, **settings, "env": "development",
                                "data_dir": tmp_path}).env == "development"


def test_production_accepts_long_endpoint_secrets() -> None:
    s = load_settings(**PRODUCTION, metrics_token=GOOD, **TELEGRAM,
                      telegram_webhook_secret=GOOD, **WHATSAPP,
                      whatsapp_app_secret="a" * 32, whatsapp_verify_token=GOOD)
    assert s.env == "production" and s.whatsapp_enabled
    assert load_settings(**PRODUCTION, metrics_token="").metrics_token == ""  # /metrics off
