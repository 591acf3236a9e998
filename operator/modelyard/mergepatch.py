"""JSON merge patches (RFC 7386) computed as a diff, for status writes.

The API server merges nested objects key by key and keeps whatever a patch leaves out, so a
patch that only names top-level keys leaves stale nested keys behind (an old ``sha256`` under
``model``, an old ``exitCode`` under ``lastFailure``). ``diff`` recurses and nulls every key
that ``desired`` no longer has; lists are replaced whole, as RFC 7386 does.
"""

from __future__ import annotations

from typing import Any


def diff(current: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that turns ``current`` into ``desired``, or ``None`` if they are equal."""
    current = current or {}
    patch: dict[str, Any] = {key: None for key in current if key not in desired}
    for key, want in desired.items():
        have = current.get(key)
        if have == want:
            continue
        if isinstance(want, dict) and isinstance(have, dict):
            nested = diff(have, want)
            if nested is not None:
                patch[key] = nested
        else:
            # A nested object replacing a non-object is sent whole: RFC 7386 then sets it as is
            # (its null values would be dropped, and ``desired`` never holds nulls).
            patch[key] = want
    return patch or None
