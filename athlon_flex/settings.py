"""The one configuration of the project, read by every stage.

Settings come from environment variables and an optional `.env` file in the working
directory. Names are the old tool's (`.docker-env` keeps working) plus a few new ones;
`.env.example` documents each. A bad value stops the program with one message that
names the variable, never a traceback.
"""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_API_URL = "https://flex.athlon.com/api/v1"
GMAIL_SMTP_HOST = "smtp.gmail.com"


class SettingsError(ValueError):
    """A setting is missing or has a value the project cannot use."""


def _split_addresses(value: object) -> object:
    """`EMAIL_TO=a@x.nl, b@y.nl` (commas or semicolons) becomes a list of addresses."""
    if isinstance(value, str):
        parts = value.replace(";", ",").split(",")
        return [part.strip() for part in parts if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the project. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    # --- Athlon Flex showroom API -------------------------------------------------
    athlon_api_url: str = DEFAULT_API_URL
    athlon_username: str | None = None
    athlon_password: SecretStr | None = None
    gross_yearly_income: float | None = Field(default=None, gt=0)
    apply_loonheffingskorting: bool = True
    athlon_max_concurrency: int = Field(default=8, ge=1, le=64)
    athlon_http_timeout_seconds: float = Field(default=30.0, gt=0)
    athlon_http_max_retries: int = Field(default=5, ge=0, le=20)
    # First retry waits about this long (then doubling, with jitter); tests use ~0.
    athlon_http_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    athlon_max_shrink_percent: float = Field(default=50.0, ge=0, le=100)
    athlon_details_refresh_hours: float = Field(default=24.0, ge=0)

    # --- `athlon-flex watch` (and the Airflow trigger) ------------------------------
    athlon_watch_interval_seconds: float = Field(default=30.0, gt=0)
    athlon_watch_min_gap_seconds: float = Field(default=60.0, ge=0)
    athlon_watch_cycle_seconds: float = Field(default=600.0, gt=0)

    # --- Where state lives --------------------------------------------------------
    athlon_data_dir: Path = Path(".athlon")

    # --- PostgreSQL (unset POSTGRES_HOST = embedded server under ATHLON_DATA_DIR) ---
    postgres_host: str | None = None
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_user: str = "postgres"
    postgres_password: SecretStr | None = None
    postgres_db: str = Field(default="athlon_flex", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    # --- Email ------------------------------------------------------------------
    email_from: str | None = None
    email_to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    google_app_password: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: Literal["ssl", "starttls", "none"] = "ssl"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None

    # --- Notifier -----------------------------------------------------------------
    notify_subscriptions_file: Path | None = None
    notify_baseline: bool = False
    notify_image_width: int = Field(default=300, ge=16, le=2000)
    notify_daily_time: time = time(6, 0)
    notify_timezone: str = "Europe/Amsterdam"

    # --- Operations (Airflow) -----------------------------------------------------
    alert_email_to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    alert_after_failures: int = Field(default=3, ge=1)

    _split_email_to = field_validator("email_to", "alert_email_to", mode="before")(
        _split_addresses
    )

    @field_validator("athlon_api_url")
    @classmethod
    def _api_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("email_to", "alert_email_to")
    @classmethod
    def _addresses_look_like_email(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("notify_timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @model_validator(mode="after")
    def _credentials_come_in_pairs(self) -> Settings:
        if bool(self.athlon_username) != bool(self.athlon_password):
            raise ValueError("ATHLON_USERNAME and ATHLON_PASSWORD must be set together")
        return self

    # --- Derived values -----------------------------------------------------------
    @property
    def uses_embedded_postgres(self) -> bool:
        """No POSTGRES_HOST means the project runs its own server under the data dir."""
        return not self.postgres_host

    @property
    def email_configured(self) -> bool:
        """Email goes out when there is a sender, a way to send and someone to send to.

        The recipients are EMAIL_TO or, when set, the subscriptions file's own.
        """
        has_transport = bool(self.smtp_host) or bool(self.google_app_password)
        has_recipients = (
            bool(self.email_to) or self.notify_subscriptions_file is not None
        )
        return bool(self.email_from) and has_transport and has_recipients

    @property
    def data_dir(self) -> Path:
        """ATHLON_DATA_DIR as an absolute path (relative paths are from the cwd)."""
        return self.athlon_data_dir.expanduser().resolve()


def _describe(error: ValidationError) -> str:
    """One line per bad variable: `POSTGRES_PORT='abc': Input should be ...`."""
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]).upper() or "settings"
        message = item["msg"].removeprefix("Value error, ")
        if name == "SETTINGS" or not item["loc"]:
            lines.append(message)
            continue
        raw = os.environ.get(name)
        shown = "" if raw is None or "PASSWORD" in name else f"={raw!r}"
        lines.append(f"{name}{shown}: {message}")
    return "Invalid configuration: " + "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; raise SettingsError naming the variable on bad input.

    `overrides` (field name → value) win over the environment; tests and the DAG's
    params use them.
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
