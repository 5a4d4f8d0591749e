"""Settings come from the environment (and .env) only through bot/config.py."""

from __future__ import annotations

from pathlib import Path

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
