"""The one place that reads the environment (and `.env`).

Every setting is documented in `.env.example`; names are shared by every issue (design.md).
"""

from __future__ import annotations

import secrets
from datetime import time
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.quiet import QuietHours

DEV_SECRET_FILE = "secret.key"
# Shortest secret production accepts where Lontar's operator chooses it (secret key, tokens)
MIN_SECRET = 32


class ConfigError(Exception):
    """A setting is missing or unsafe; the message says which and why."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


def parse_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """`127.0.0.1, 10.0.0.0/8, ::1` as networks (an address is a network of one).

    Raises:
        ValueError: an entry is no address or network, or it is a /0, which would let any
            client choose the address Lontar sees (bot/proxy.py).
    """
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            net = ip_network(item, strict=False)  # 10.0.0.1/8 means the 10.0.0.0/8 network
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network "
                             "(e.g. 127.0.0.1, 10.0.0.0/8, ::1)") from None
        if net.prefixlen == 0:
            raise ValueError(f"{item!r} would trust every address: any client could then "
                             "choose the address Lontar sees; list the proxies themselves")
        networks.append(net)
    return tuple(networks)


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
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (bot/proxy.py):
    # addresses or networks, comma-separated; empty: none, the socket's peer is the client
    trusted_proxies_setting: str = Field(
        "", validation_alias=_env("LONTAR_TRUSTED_PROXIES"))

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

    @cached_property
    def trusted_proxies(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """LONTAR_TRUSTED_PROXIES, parsed (already checked by its validator)."""
        return parse_networks(self.trusted_proxies_setting)

    @field_validator("secure_cookies_setting", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_lower(cls, value: object) -> object:
        return value.strip().lower() or "text" if isinstance(value, str) else value

    @field_validator("trusted_proxies_setting")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        """Refuse to start rather than serve an endpoint behind a guessable secret.

        In production every secret that guards something must be long enough to be random
        (MIN_SECRET); all problems are named at once so one edit of the env file fixes them.
        """
        if self.env == "production":
            problems = self._weak_production_secrets()
            if problems:
                raise ValueError("unsafe for production:\n" + "\n".join(
                    f"  - {p}" for p in problems))
        if self.telegram_webhook_url and len(self.telegram_webhook_secret) < 16:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET (16+ characters of A-Z a-z 0-9 _ -) "
                             "is required with TELEGRAM_WEBHOOK_URL")
        if self.whatsapp_enabled and not (self.whatsapp_app_secret
                                          and self.whatsapp_verify_token):
            raise ValueError("WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN are required "
                             "with WHATSAPP_ACCESS_TOKEN (webhooks are signed and verified)")
        return self

    def _weak_production_secrets(self) -> list[str]:
        """What guards each endpoint in production, and what is wrong with it."""
        n = MIN_SECRET
        problems = []
        if len(self.secret_key_setting) < n:
            problems.append(f"LONTAR_SECRET_KEY must be set to at least {n} random characters "
                            "(it signs sessions and keys the NIK hashes)")
        if self.metrics_token and len(self.metrics_token) < n:
            problems.append(f"LONTAR_METRICS_TOKEN must be at least {n} random characters "
                            "(it guards /metrics); leave it empty to turn /metrics off")
        if self.telegram_webhook_url and len(self.telegram_webhook_secret) < n:
            problems.append(f"TELEGRAM_WEBHOOK_SECRET must be at least {n} characters of "
                            "A-Z a-z 0-9 _ - with TELEGRAM_WEBHOOK_URL (it guards "
                            "/webhooks/telegram)")
        if self.whatsapp_enabled and not self.whatsapp_app_secret:
            problems.append("WHATSAPP_APP_SECRET (the Meta app's secret) must be set with "
                            "WHATSAPP_ACCESS_TOKEN (it checks every POST to /webhooks/whatsapp)")
        if self.whatsapp_enabled and len(self.whatsapp_verify_token) < n:
            problems.append(f"WHATSAPP_VERIFY_TOKEN must be at least {n} random characters "
                            "with WHATSAPP_ACCESS_TOKEN (it guards the GET that subscribes "
                            "/webhooks/whatsapp)")
        return problems

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
