"""The one configuration of the project, read by every stage.

Settings come from environment variables and an optional `.env` file in the working
directory. Names are the old tool's (`.docker-env` keeps working) plus a few new ones;
`.env.example` documents each. A bad value stops the program with one message that
names the variable, never a traceback.
"""

from __future__ import annotations

import logging
import os
from datetime import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from athlon_flex.addresses import normalize_address, unique_addresses
from athlon_flex.time_zones import TimeZoneName

log = logging.getLogger(__name__)

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


class _EmptyLoonheffingskortingIsFalse(PydanticBaseSettingsSource):
    """`APPLY_LOONHEFFINGSKORTING=` (set, empty) means false, as in the old tool.

    The old tool compared the raw value with "true", so its users' `.docker-env`
    files with an empty value asked for the rate without loonheffingskorting. Every
    other empty variable counts as unset here (`env_ignore_empty`), so the env and
    dotenv sources drop this one too; this source, ranked just below them, reads the
    same environment and file again with empties kept and answers only for it.
    """

    NAME = "apply_loonheffingskorting"

    def __init__(
        self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._env_file = getattr(dotenv, "env_file", None)
        self._encoding = getattr(dotenv, "env_file_encoding", None)

    def get_field_value(self, field: object, field_name: str) -> tuple[None, str, bool]:
        return None, field_name, False  # unused: __call__ answers for the one field

    def __call__(self) -> dict[str, object]:
        kept = [EnvSettingsSource(self.settings_cls, env_ignore_empty=False)]
        if self._env_file:
            kept.append(
                DotEnvSettingsSource(
                    self.settings_cls,
                    env_file=self._env_file,
                    env_file_encoding=self._encoding,
                    env_ignore_empty=False,
                )
            )
        for source in kept:
            if self.NAME in source.env_vars:
                return {self.NAME: False} if source.env_vars[self.NAME] == "" else {}
        return {}


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
    # Every float has a finite upper bound: `inf` or 1e20 passed validation and then
    # broke every load (httpx, timedelta) or the watch's wait with a traceback.
    athlon_http_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, allow_inf_nan=False
    )
    athlon_http_max_retries: int = Field(default=5, ge=0, le=20)
    # First retry waits about this long (then doubling, with jitter); tests use ~0.
    athlon_http_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    athlon_max_shrink_percent: float = Field(default=50.0, ge=0, le=100)
    athlon_details_refresh_hours: float = Field(
        default=24.0, ge=0, le=24 * 366, allow_inf_nan=False
    )

    # --- `athlon-flex watch` (and the Airflow trigger) ------------------------------
    athlon_watch_interval_seconds: float = Field(
        default=30.0, gt=0, le=86400, allow_inf_nan=False
    )
    athlon_watch_min_gap_seconds: float = Field(
        default=60.0, ge=0, le=86400, allow_inf_nan=False
    )
    athlon_watch_cycle_seconds: float = Field(
        default=600.0, gt=0, le=86400, allow_inf_nan=False
    )

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
    notify_timezone: TimeZoneName = "Europe/Amsterdam"
    # A car missing from the showroom for less than this keeps its availability
    # window (an API hiccup is not news); dbt var availability_grace_minutes.
    notify_grace_minutes: float = Field(default=30.0, ge=0, le=24 * 60)

    # --- Switching from the older tool (athlon-flex migrate-from-original) ----------
    # Its database as a URL (postgresql://user:password@host:5432/athlon); from the
    # environment, so the password never appears on a command line.
    original_database_url: SecretStr | None = None

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

    @field_validator("athlon_data_dir", "notify_subscriptions_file", mode="before")
    @classmethod
    def _path_has_no_nul(cls, value: object) -> object:
        # The OS refuses such a path later, with a traceback (ValueError).
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL byte")
        return value

    @field_validator(
        "athlon_api_url",
        "athlon_data_dir",
        "postgres_host",
        "postgres_user",
        "smtp_host",
        "smtp_user",
        "notify_subscriptions_file",
        mode="before",
    )
    @classmethod
    def _no_stray_whitespace(cls, value: object) -> object:
        # `ATHLON_DATA_DIR=/srv/athlon ` (a space pasted into an env file) is
        # another folder, `SMTP_HOST= x` another host: refused, never guessed.
        if isinstance(value, str) and value != value.strip():
            raise ValueError("starts or ends with whitespace; remove it")
        return value

    @field_validator("email_to", "alert_email_to")
    @classmethod
    def _addresses_follow_the_rule(
        cls, value: list[str], info: ValidationInfo
    ) -> list[str]:
        # One rule for every address (athlon_flex/addresses.py): lower case, each once.
        return unique_addresses(value, where=(info.field_name or "").upper())

    @field_validator("email_from")
    @classmethod
    def _sender_follows_the_rule(cls, value: str | None) -> str | None:
        return None if value is None else normalize_address(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        empty_is_false = _EmptyLoonheffingskortingIsFalse(settings_cls, dotenv_settings)
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            empty_is_false,
            file_secret_settings,
        )

    @model_validator(mode="before")
    @classmethod
    def _half_a_login_is_anonymous(cls, data: object) -> object:
        """A username without a password (or the reverse) runs anonymously.

        The old tool did so silently; its users' files may have only one of the two.
        Anonymous still loads every car, only without contribution and net cost.
        """
        if not isinstance(data, dict):
            return data
        username = data.get("athlon_username")
        password = data.get("athlon_password")
        if bool(username) != bool(password):
            given, missing = (
                ("ATHLON_USERNAME", "ATHLON_PASSWORD")
                if username
                else ("ATHLON_PASSWORD", "ATHLON_USERNAME")
            )
            log.warning(
                "%s is set but %s is not: running anonymously (no contribution or "
                "net cost); set both to log in",
                given,
                missing,
            )
            data = {**data, "athlon_username": None, "athlon_password": None}
        return data

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
    except UnicodeDecodeError as error:  # a .env saved in another encoding
        raise SettingsError(
            f"Invalid configuration: .env is not UTF-8 text ({error.reason} at byte "
            f"{error.start}); save it as UTF-8"
        ) from None
    except OSError as error:  # a .env that cannot be read
        raise SettingsError(
            f"Invalid configuration: cannot read .env: {error.strerror or error}"
        ) from None
