"""Who gets told about what, and when: the subscriptions file and EMAIL_TO.

The file (NOTIFY_SUBSCRIPTIONS_FILE, see examples/subscriptions.yml) lists recipients,
each with a cadence and filters. Without it, every EMAIL_TO address is an instant
recipient without filters. Everything is validated before anything is sent: a bad
entry stops the run with a message naming the recipient and the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from athlon_flex.addresses import normalize_address
from athlon_flex.settings import Settings
from athlon_flex.time_zones import TimeZoneName
from notifier.errors import NotifyConfigurationError
from notifier.filters import FilterSet
from notifier.push import PushChannel, check_url

Cadence = Literal["instant", "daily"]
CADENCES: tuple[Cadence, ...] = ("instant", "daily")


def _as_alternatives(value: Any) -> Any:
    """`filters:` may be one mapping or a list of them (any of which may match)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return value


class Subscription(BaseModel):
    """One recipient: an email address and/or push channels, when to send, and
    what they want."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str | None = None
    # For people and channels: who this is when there is no email (logs, errors).
    name: str | None = Field(default=None, min_length=1, max_length=100)
    # Apprise URLs (notifier/push.py), each a push channel of its own. Secrets:
    # never shown in an error or log.
    apprise: tuple[str, ...] = ()
    cadence: Cadence = "instant"
    # Only for cadence `daily`; default NOTIFY_DAILY_TIME in NOTIFY_TIMEZONE.
    daily_time: time | None = None
    timezone: TimeZoneName | None = None
    filters: tuple[FilterSet, ...] = ()
    # Price drops, opt-in: a car they would be told about (filters apply) that gets
    # this much cheaper during its stay; either threshold met is enough.
    price_drop_percent: float | None = Field(default=None, gt=0, lt=100)
    price_drop_euro: float | None = Field(default=None, gt=0)

    _filters_as_list = field_validator("filters", mode="before")(_as_alternatives)

    @field_validator("email", mode="before")
    @classmethod
    def _address_follows_the_rule(cls, value: Any) -> str | None:
        # The same rule as EMAIL_TO (athlon_flex/addresses.py): lower case, no CR/LF.
        return None if value is None else normalize_address(value)

    @field_validator("name")
    @classmethod
    def _name_is_one_line(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.strip() or re.search(r"[\x00-\x1f\x7f]", value)
        ):
            raise ValueError("a name is one line of text")
        return value

    @field_validator("apprise", mode="before")
    @classmethod
    def _urls_apprise_knows(cls, value: Any) -> Any:
        # One URL or a list; each must be one Apprise recognises. The error never
        # quotes a URL (pydantic would show the input: it is cleared below).
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ValueError("apprise: a URL or a list of URLs")
        for index, url in enumerate(value):
            try:
                check_url(url)
            except ValueError as error:
                raise ValueError(f"URL #{index + 1}: {error}") from None
        urls = [url.strip() for url in value]
        if len(set(urls)) != len(urls):
            raise ValueError("the same URL is listed twice")
        return tuple(urls)

    @model_validator(mode="after")
    def _reachable_and_named(self) -> Subscription:
        if self.email is None and not self.apprise:
            raise ValueError("give an `email`, `apprise` URLs, or both")
        if self.email is None and self.name is None:
            raise ValueError("a recipient without `email` needs a `name`")
        return self

    @property
    def who(self) -> str:
        """How logs and errors name this recipient: their name, else their email."""
        return self.name or self.email or "?"

    def push_channels(self) -> tuple[PushChannel, ...]:
        """Each Apprise URL as a channel of its own (notifier/push.py)."""
        return tuple(PushChannel(url, self.who) for url in self.apprise)

    @field_validator("daily_time", mode="before")
    @classmethod
    def _time_is_text(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 7:30 as the number 450 (base 60).
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError('write the time as quoted text, e.g. "07:30"')
        return value

    @property
    def wants_price_drops(self) -> bool:
        return self.price_drop_percent is not None or self.price_drop_euro is not None

    def drop_is_worth_telling(self, previous: Any, now: Any) -> bool:
        """Whether a drop from `previous` to `now` (monthly euro) meets either of
        this recipient's thresholds; never without a threshold or usable prices."""
        try:
            before, after = float(previous), float(now)
        except (TypeError, ValueError):
            return False
        if not (math.isfinite(before) and math.isfinite(after)) or before <= 0:
            return False
        drop = before - after
        if drop <= 0:
            return False
        # A small tolerance: 539 → 512.05 is 5% although floats say 4.999...
        by_percent = (
            self.price_drop_percent is not None
            and 100 * drop / before >= self.price_drop_percent - 1e-9
        )
        by_euro = (
            self.price_drop_euro is not None and drop >= self.price_drop_euro - 1e-9
        )
        return by_percent or by_euro

    def digest_time(self, settings: Settings) -> tuple[time, str]:
        """(local time, time zone) of this recipient's daily digest."""
        return (
            self.daily_time or settings.notify_daily_time,
            self.timezone or settings.notify_timezone,
        )


class SubscriptionsFile(BaseModel):
    """The whole file: a non-empty list of recipients, each address once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipients: list[Subscription] = Field(min_length=1)

    @field_validator("recipients")
    @classmethod
    def _each_address_once(cls, value: list[Subscription]) -> list[Subscription]:
        # Addresses are already lower case. Two entries for one mailbox are refused
        # rather than merged: their cadences and filters may disagree.
        seen: set[str] = set()
        for subscription in value:
            if subscription.email is None:
                continue
            if subscription.email in seen:
                raise ValueError(
                    f"{subscription.email!r} is listed twice (addresses ignore case)"
                )
            seen.add(subscription.email)
        # A push channel (and a name) belongs to one recipient: two would share
        # one recipient key and one record of what was sent.
        channels: set[str] = set()
        names: set[str] = set()
        for subscription in value:
            for channel in subscription.push_channels():
                if channel.key in channels:
                    raise ValueError(
                        f"an Apprise URL of {subscription.who} ({channel.key}) is "
                        "also another recipient's"
                    )
                channels.add(channel.key)
            if subscription.name is not None:
                if subscription.name.lower() in names:
                    raise ValueError(f"the name {subscription.name!r} is used twice")
                names.add(subscription.name.lower())
        return value


def _entry_name(raw: Any, loc: Sequence[int | str]) -> str:
    """`recipient #2 (bob@example.nl)` for a loc like ('recipients', 1, ...)."""
    if len(loc) >= 2 and loc[0] == "recipients" and isinstance(loc[1], int):
        index = loc[1]
        address = ""
        try:
            entry = raw["recipients"][index]
            if isinstance(entry, Mapping) and entry.get("email"):
                # Only an address that passes the rule: a bad one is quoted in the
                # error itself, and its CR/LF must not reach the one-line message.
                address = f" ({normalize_address(entry['email'])})"
            elif isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                address = f" ({' '.join(entry['name'].split())[:100]})"
        except (KeyError, IndexError, TypeError, ValueError):
            pass
        rest = ".".join(str(part) for part in loc[2:])
        return f"recipient #{index + 1}{address}" + (f", {rest}" if rest else "")
    return ".".join(str(part) for part in loc) or "file"


def _describe(
    error: ValidationError, name: Callable[[Sequence[int | str]], str]
) -> str:
    """Pydantic's errors as `where: what`, joined; `name` turns a loc into `where`."""
    return "; ".join(
        f"{name(item['loc'])}: {item['msg'].removeprefix('Value error, ')}"
        for item in error.errors()
    )


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What YAML found wrong and where, without the quoted line PyYAML adds: that
    line may hold an Apprise URL, and its token must not reach the error."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{error.problem or error.context or 'unreadable'}{where}"
    return type(error).__name__


def load_subscriptions(path: Path) -> tuple[Subscription, ...]:
    """Read and validate the subscriptions file; one line naming what is wrong."""
    nothing_sent = "nothing was sent or recorded"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise NotifyConfigurationError(
            f"Cannot read subscriptions file {path}: {error.strerror or error}; "
            f"{nothing_sent}. Fix NOTIFY_SUBSCRIPTIONS_FILE."
        ) from None
    except UnicodeDecodeError as error:  # saved as Latin-1 (an accented name)
        raise NotifyConfigurationError(
            f"Subscriptions file {path} is not UTF-8 text ({error.reason} at byte "
            f"{error.start}); save it as UTF-8; {nothing_sent}."
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise NotifyConfigurationError(
            f"Subscriptions file {path} is not valid YAML ({_yaml_problem(error)}); "
            f"{nothing_sent}."
        ) from None
    try:
        parsed = SubscriptionsFile.model_validate(raw)
    except ValidationError as error:
        raise NotifyConfigurationError(
            f"Subscriptions file {path} is invalid: "
            f"{_describe(error, lambda loc: _entry_name(raw, loc))}; "
            f"{nothing_sent}."
        ) from None
    return tuple(parsed.recipients)


def configured_subscriptions(settings: Settings) -> tuple[Subscription, ...]:
    """The subscriptions file's recipients, or EMAIL_TO's as instant, unfiltered."""
    if settings.notify_subscriptions_file is not None:
        return load_subscriptions(settings.notify_subscriptions_file)
    return tuple(Subscription(email=address) for address in settings.email_to)


def parse_extra_filters(
    extra_filters: Sequence[Mapping[str, Any]] | None,
) -> tuple[FilterSet, ...]:
    """The run's ad-hoc filter sets (any may match), applied on top of everyone's."""
    if not extra_filters:
        return ()
    if isinstance(extra_filters, Mapping):  # one set given without the list
        extra_filters = [extra_filters]
    filters = []
    for index, item in enumerate(extra_filters):
        try:
            filters.append(FilterSet.model_validate(item))
        except ValidationError as error:
            where = f"extra_filters[{index}]"
            messages = _describe(
                error, lambda loc, where=where: ".".join([where, *map(str, loc)])
            )
            raise NotifyConfigurationError(
                f"extra_filters is invalid: {messages}; nothing was sent or recorded."
            ) from None
    return tuple(filters)
