"""The secret-leak guard every test runs under (the root conftest wires it in).

It learns the secrets a test uses as they come into being: the apiKeys, every Social Login token and
provider credential the emulator issues, every Registration access token it mints, and every
session and browser cookie the function sets. At the end of the test it looks for each of them in
every log line the function wrote, every trace annotation, everything printed (metrics included),
every response body, every audit event sent to EventBridge, and every stored item except the two
KMS-encrypted fields. One hit fails the test.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

MIN_SECRET_LENGTH = 8
"""Shorter values (a test's "t" token in a refused request) would match by chance, not by leaking."""
WORD_LENGTH_LIMIT = 16
_PLAIN_WORD = re.compile(r"[A-Za-z_-]+")
ENCRYPTED_FIELDS = {"credentials", "capture_token"}
REQUEST_SECRETS = ("token", "access_token")
SECRET_FIELD = re.compile(r"token|secret|key|password", re.IGNORECASE)


@dataclass
class LeakGuard:
    secrets: set[str] = field(default_factory=set)
    log_lines: list[str] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def learn(self, *values: Any) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                self.secrets.add(value)

    def learn_credentials(self, credentials: dict[str, Any] | None) -> None:
        """The secret parts of provider accessCredentials (not `type`, `uid` or `expires`, which are not)."""
        for name, value in (credentials or {}).items():
            if SECRET_FIELD.search(name):
                self.learn(value)

    def learn_request(self, event: dict[str, Any]) -> None:
        """The secrets a request carries: a token or access token in its JSON or form body."""
        raw = event.get("body") or ""
        try:
            text = base64.b64decode(raw).decode() if event.get("isBase64Encoded") else str(raw)
        except (ValueError, UnicodeDecodeError):
            return
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # hostile bodies: forms, or JSON nested past the limit
            data = {name: values[0] for name, values in parse_qs(text).items()}
        if isinstance(data, dict):
            self.learn(*(value for name in REQUEST_SECRETS if _could_be_a_secret(value := data.get(name))))

    def learn_response(self, response: dict[str, Any]) -> None:
        """A handler's reply: its cookies are secrets; its body and other headers are places to look."""
        for cookie in response.get("cookies") or []:
            self.learn(str(cookie).split(";", 1)[0].partition("=")[2])
        self.bodies.append(str(response.get("body") or ""))
        self.bodies.append(json.dumps(response.get("headers") or {}))

    def learn_published(self, entries: Iterable[Any]) -> None:
        """The entries of a PutEvents call, as they leave for EventBridge."""
        self.events.extend(json.dumps(entry, default=str) for entry in entries)

    def learn_items(self, items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            self.items.append(
                json.dumps({key: value for key, value in item.items() if key not in ENCRYPTED_FIELDS})
            )

    def leaks(self) -> list[str]:
        places = {
            "log line": self.log_lines,
            "trace annotation": self.annotations,
            "response body": self.bodies,
            "stored item": self.items,
            "printed output": self.printed,
            "published event": self.events,
        }
        found = []
        for place, texts in places.items():
            for text in texts:
                for secret in self.secrets:
                    if secret in text:
                        excerpt = text.replace(secret, "«secret»")[:200]
                        found.append(f"a secret ({secret[:4]}…, {len(secret)} chars) in a {place}: {excerpt}")
        return found


def _could_be_a_secret(value: Any) -> bool:
    """A value a request carries as a token, unless it is a short plain word.

    A fuzzer draws words too, and "function" is in every log line (`function_name`) without leaking
    anything. Real tokens and access tokens have digits or are long: 40 hex characters with no digit
    happen once in 10**17.
    """
    if not isinstance(value, str):
        return False
    return len(value) >= WORD_LENGTH_LIMIT or not _PLAIN_WORD.fullmatch(value)
