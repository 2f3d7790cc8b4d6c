"""The benchmark's side door into the emulator (`/_emulator/...`).

Kept apart from world.py so the measured processes import only requests for it, not moto or Flask.
"""

from __future__ import annotations

from typing import Any

import requests

ADMIN_HOST = "bench-admin"
"""The Host header of the benchmark's own calls to the emulator, so its connection is told apart."""


class EmulatorAdmin:
    """The benchmark's side door into the emulator (`/_emulator/...`), on one kept-alive connection."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url
        self.http = requests.Session()
        self.http.headers["Host"] = ADMIN_HOST

    def token(self, token_url: str, *, provider: str | None = None, identifier: str | None = None) -> str:
        """A Social Login token for `token_url`: a new identity of `provider`, or `identifier`'s."""
        payload = {"token_url": token_url, "provider": provider, "identifier": identifier}
        return str(self._post("/_emulator/tokens", payload)["token"])

    def access_token(self, user_id: str) -> str:
        return str(self._post("/_emulator/access_tokens", {"user_id": user_id})["access_token"])

    def calls(self) -> dict[str, int]:
        """Upstream calls received so far, by endpoint (the side door's own left out)."""
        counts = dict(self._get("/_emulator/calls")["calls"])
        return {name: count for name, count in counts.items() if not name.startswith("emulator_")}

    def connections(self) -> tuple[int, dict[str, int]]:
        """Connections accepted: in all, and by the host name the client used (the benchmark's own left out).

        The total counts the side door's connection too; one that closed before its first request has no host.
        """
        reply = self._get("/_emulator/connections")
        by_host = dict(reply["by_host"])
        by_host.pop(ADMIN_HOST, None)
        return int(reply["accepted"]), by_host

    def reset(self) -> None:
        self._post("/_emulator/reset", {})

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = self.http.post(f"{self._base}{path}", json=payload, timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def _get(self, path: str) -> dict[str, Any]:
        reply = self.http.get(f"{self._base}{path}", timeout=10)
        reply.raise_for_status()
        return dict(reply.json())
