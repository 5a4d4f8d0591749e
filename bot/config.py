"""The one place that reads the environment (and `.env`).

Every setting is documented in `.env.example`; names are shared by every issue (design.md).
"""

from __future__ import annotations

import secrets
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.quiet import QuietHours

DEV_SECRET_FILE = "secret.key"


class ConfigError(Exception):
    """A setting is missing or unsafe; the message says which and why."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "production"] = Field(
        "development", validation_alias=_env("LONTAR_ENV")
    )
    host: str = Field("127.0.0.1", validation_alias=_env("LONTAR_HOST"))
    port: int = Field(8080, ge=0, le=65535, validation_alias=_env("LONTAR_PORT"))
    data_dir: Path = Field(Path("data"), validation_alias=_env("LONTAR_DATA_DIR"))
    database_url_setting: str = Field("", validation_alias=_env("DATABASE_URL"))
    secret_key_setting: str = Field("", validation_alias=_env("LONTAR_SECRET_KEY"))
    timezone: str = Field("Asia/Makassar", validation_alias=_env("LONTAR_TIMEZONE"))
    content_dir: Path | None = Field(None, validation_alias=_env("LONTAR_CONTENT_DIR"))
    idle_minutes: int = Field(30, ge=1, validation_alias=_env("LONTAR_IDLE_MINUTES"))
    log_level: str = Field("INFO", validation_alias=_env("LONTAR_LOG_LEVEL"))
    # "all": take webhooks and web chat, and run the scheduler and senders while holding the
    # leader lock (PostgreSQL); "receiver": webhooks and web chat only
    role: Literal["all", "receiver"] = Field("all", validation_alias=_env("LONTAR_ROLE"))
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias=_env("LONTAR_LOG_FORMAT"))
    web_max_body: int = Field(65_536, ge=1024, validation_alias=_env("LONTAR_WEB_MAX_BODY"))
    web_rate_per_minute: int = Field(
        30, ge=1, validation_alias=_env("LONTAR_WEB_RATE_PER_MINUTE")
    )
    # Bearer token Prometheus sends to /metrics; empty: /metrics answers 404 (nothing leaks)
    metrics_token: str = Field("", validation_alias=_env("LONTAR_METRICS_TOKEN"))

    session_idle_minutes: int = Field(
        30, ge=1, validation_alias=_env("LONTAR_SESSION_IDLE_MINUTES"))
    login_attempts: int = Field(5, ge=1, validation_alias=_env("LONTAR_LOGIN_ATTEMPTS"))
    secure_cookies_setting: bool | None = Field(
        None, validation_alias=_env("LONTAR_SECURE_COOKIES"))
    sla_check_minutes: int = Field(15, ge=1, validation_alias=_env("LONTAR_SLA_CHECK_MINUTES"))
    reminder_check_minutes: int = Field(
        15, ge=1, validation_alias=_env("LONTAR_REMINDER_CHECK_MINUTES"))
    # personal data retention (bot/services/privacy.py, run daily by bot/jobs.py)
    retention_inbound_days: int = Field(
        365, ge=1, validation_alias=_env("LONTAR_RETENTION_INBOUND_DAYS"))
    retention_attachment_days: int = Field(
        365, ge=1, validation_alias=_env("LONTAR_RETENTION_ATTACHMENT_DAYS"))
    quiet_start: time = Field(time(21, 0), validation_alias=_env("LONTAR_QUIET_START"))
    quiet_end: time = Field(time(7, 0), validation_alias=_env("LONTAR_QUIET_END"))

    telegram_bot_token: str = Field("", validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_api_base_url: str = Field(
        "https://api.telegram.org", validation_alias=_env("TELEGRAM_API_BASE_URL"))
    telegram_webhook_url: str = Field("", validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: str = Field(
        "", pattern=r"^[A-Za-z0-9_-]{0,256}$", validation_alias=_env("TELEGRAM_WEBHOOK_SECRET"))
    telegram_rate_per_second: float = Field(
        30.0, gt=0, le=30, validation_alias=_env("TELEGRAM_RATE_PER_SECOND"))
    telegram_poll_timeout: int = Field(
        30, ge=0, le=50, validation_alias=_env("TELEGRAM_POLL_TIMEOUT"))
    attachment_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, validation_alias=_env("LONTAR_ATTACHMENT_MAX_BYTES"))

    whatsapp_access_token: str = Field("", validation_alias=_env("WHATSAPP_ACCESS_TOKEN"))
    whatsapp_phone_number_id: str = Field("", validation_alias=_env("WHATSAPP_PHONE_NUMBER_ID"))
    whatsapp_app_secret: str = Field("", validation_alias=_env("WHATSAPP_APP_SECRET"))
    whatsapp_verify_token: str = Field("", validation_alias=_env("WHATSAPP_VERIFY_TOKEN"))
    whatsapp_api_base_url: str = Field(
        "https://graph.facebook.com/v23.0", validation_alias=_env("WHATSAPP_API_BASE_URL"))
    whatsapp_template_utility: str = Field(
        "", validation_alias=_env("WHATSAPP_TEMPLATE_UTILITY"))
    whatsapp_template_marketing: str = Field(
        "", validation_alias=_env("WHATSAPP_TEMPLATE_MARKETING"))
    whatsapp_template_language: str = Field(
        "id", validation_alias=_env("WHATSAPP_TEMPLATE_LANGUAGE"))
    whatsapp_rate_per_second: float = Field(
        80.0, gt=0, validation_alias=_env("WHATSAPP_RATE_PER_SECOND"))
    whatsapp_pair_seconds: float = Field(
        6.0, gt=0, validation_alias=_env("WHATSAPP_PAIR_SECONDS"))
    whatsapp_daily_initiated: int = Field(
        250, ge=0, validation_alias=_env("WHATSAPP_DAILY_INITIATED"))
    whatsapp_max_body: int = Field(
        3 * 1024 * 1024, ge=1024, validation_alias=_env("WHATSAPP_MAX_BODY"))

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: on by default in production, off for the local server."""
        if self.secure_cookies_setting is not None:
            return self.secure_cookies_setting
        return self.env == "production"

    @property
    def quiet_hours(self) -> QuietHours:
        """No outreach broadcast goes out in these office hours (equal: no quiet hours)."""
        return QuietHours(self.quiet_start, self.quiet_end, ZoneInfo(self.timezone))

    @property
    def whatsapp_enabled(self) -> bool:
        return bool(self.whatsapp_access_token and self.whatsapp_phone_number_id)

    @field_validator("secure_cookies_setting", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_lower(cls, value: object) -> object:
        return value.strip().lower() or "text" if isinstance(value, str) else value

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env == "production" and len(self.secret_key_setting) < 32:
            raise ValueError(
                "LONTAR_SECRET_KEY must be set to at least 32 random characters in production"
            )
        if self.telegram_webhook_url and len(self.telegram_webhook_secret) < 16:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET (16+ characters of A-Z a-z 0-9 _ -) "
                             "is required with TELEGRAM_WEBHOOK_URL")
        if self.whatsapp_enabled and not (self.whatsapp_app_secret
                                          and self.whatsapp_verify_token):
            raise ValueError("WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN are required "
                             "with WHATSAPP_ACCESS_TOKEN (webhooks are signed and verified)")
        return self

    @cached_property
    def database_url(self) -> str:
        return self.database_url_setting or f"sqlite:///{self.data_dir / 'lontar.db'}"

    @cached_property
    def secret_key(self) -> str:
        """The configured secret, or in development one generated once and kept in data_dir."""
        if self.secret_key_setting:
            return self.secret_key_setting
        path = self.data_dir / DEV_SECRET_FILE
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key, encoding="utf-8")
        path.chmod(0o600)
        return key


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise `ConfigError` with a readable message when they are invalid."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] != "value_error" else "")
            for err in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from exc
