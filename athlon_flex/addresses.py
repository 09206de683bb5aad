"""The one rule for an email address, used by the settings and the subscriptions file.

An address is compared, stored and sent to in lower case: mail systems treat
`Anna@Example.NL` and `anna@example.nl` as one mailbox, and so must
notifier.notifications, or the second spelling would get every car again. Spaces
around an address (`a@x.nl, b@y.nl`) are dropped; anything that could split a header
or an SMTP command (CR, LF, other control characters, whitespace inside) is refused,
as are the separators of a list of addresses.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable

log = logging.getLogger(__name__)

# Names for the characters a pasted address most often carries.
_NAMES = {"\r": "CR", "\n": "LF", "\t": "TAB", " ": "a space"}

# Characters that separate addresses in a list or open a display name: an address
# holding one is two addresses or a header, never one mailbox.
_SEPARATORS = frozenset(',;<>"()[]\\')


def _is_forbidden(char: str) -> bool:
    """Whitespace and control characters (CR, LF, NUL, DEL, ...) of any script."""
    return char.isspace() or unicodedata.category(char).startswith("C")


def normalize_address(value: object) -> str:
    """`value` as the project compares and sends it (lower case), or ValueError.

    The error text says what is wrong with the address in a few words, without
    repeating it verbatim when it holds control characters (they would break the
    one-line message).
    """
    if not isinstance(value, str):
        raise ValueError(f"an email address is text, got {type(value).__name__}")
    address = value.strip(" \t")
    shown = repr(address)
    if not address:
        raise ValueError("empty email address")
    bad = sorted({char for char in address if _is_forbidden(char)})
    if bad:
        names = ", ".join(_NAMES.get(char, f"U+{ord(char):04X}") for char in bad)
        raise ValueError(f"{shown} is not an email address (it contains {names})")
    if not address.isascii():
        # Sending to one needs SMTPUTF8 end to end; refused here in one line rather
        # than failing at send time on every run.
        raise ValueError(f"{shown} is not supported (only ASCII email addresses)")
    if any(char in _SEPARATORS for char in address):
        raise ValueError(
            f"{shown} is not an email address (one address per entry; separate "
            "addresses with commas)"
        )
    local, at, domain = address.rpartition("@")
    if not (local and at and "." in domain.strip(".")) or "@" in local:
        raise ValueError(f"{shown} is not an email address")
    # `example.nl.` is `example.nl` written fully qualified: one mailbox in two
    # spellings (each would get every car), or one the server refuses every run.
    # Empty labels and dots at the ends of the local part are not an address.
    if "" in domain.split(".") or "" in local.split("."):
        raise ValueError(
            f"{shown} is not an email address (a dot at the start or end of its "
            "name or domain, or two dots in a row)"
        )
    return address.lower()


def unique_addresses(values: Iterable[object], *, where: str) -> list[str]:
    """Each address normalized, once, in first-seen order; a repeat is a warning.

    `where` names the source (`EMAIL_TO`) in the warning and nothing else.
    """
    seen: dict[str, None] = {}
    for value in values:
        address = normalize_address(value)
        if address in seen:
            log.warning(
                "%s lists %s more than once (addresses ignore case); it is used once",
                where,
                address,
            )
            continue
        seen[address] = None
    return list(seen)
