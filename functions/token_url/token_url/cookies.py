"""The service's two cookies, named once for the function, its tests, the local stack and the benchmark,
and how the handler reads them from a request."""

from __future__ import annotations

import re

SESSION_COOKIE = "__Host-tu_session"
# SameSite=None so that it reaches the cross-site token POST; on its own it grants nothing.
BROWSER_COOKIE = "__Host-tu_browser"
BROWSER_COOKIE_MAX_AGE = 24 * 3600
# Both hold what secure_values.new_opaque_value makes: URL-safe base64 without padding.
_OPAQUE = re.compile(r"[A-Za-z0-9_-]{43}")


def _unambiguous(raw_cookies: list[str] | None) -> dict[str, str]:
    """Request cookies; a name sent twice is ambiguous, so it counts as absent."""
    seen: dict[str, list[str]] = {}
    for raw in raw_cookies or []:
        name, _, value = raw.strip().partition("=")
        seen.setdefault(name, []).append(value)
    return {name: values[0] for name, values in seen.items() if len(values) == 1}


def opaque_cookie(raw_cookies: list[str] | None, name: str) -> str | None:
    """The cookie's value if it was sent once and has the form of the values the service makes."""
    value = _unambiguous(raw_cookies).get(name)
    return value if value is not None and _OPAQUE.fullmatch(value) else None
