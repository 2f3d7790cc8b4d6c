"""Faults the emulator can inject into its upstream endpoints.

A fault applies to the next ``times`` calls of an endpoint (``times=None``: until cleared).
Faulted calls are still recorded (``RecordedCall.fault`` names the fault kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    HTTP_500 = "http_500"
    """HTTP 500 with an HTML error page (what a load balancer or a crashed backend sends)."""
    NOT_JSON = "not_json"
    """HTTP 200 with a body that is not JSON (a maintenance page)."""
    DELAY = "delay"
    """Wait ``seconds`` before answering; the request is then handled normally."""
    LATE_REPLY = "late_reply"
    """Handle the request normally (its effect is made at once), then wait ``seconds`` before answering."""
    RESET = "reset"
    """Close the connection without a response (TCP RST)."""
    SERVICE_UNAVAILABLE = "service_unavailable"
    """Social Login envelope ``{"stat":"fail","err":{"code":-1,...}}``."""
    SOCIAL_LOGIN_ERROR = "social_login_error"
    """Social Login envelope ``{"stat":"fail","err":{"code":<code>,...}}`` with HTTP 400."""
    CAPTURE_ERROR = "capture_error"
    """Capture envelope (HTTP 200, ``stat: error``) with the given code/error/description."""


DEFAULT_NOT_JSON_BODY = (
    "<!DOCTYPE html><html><head><title>Scheduled maintenance</title></head>"
    "<body><h1>We'll be back soon</h1></body></html>"
)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    times: int | None = 1
    seconds: float = 0.0
    code: int = 510
    error: str = "api_limit_error"
    description: str = "API call limit exceeded"
    body: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 (or None for 'until cleared')")
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")

    @classmethod
    def http_500(cls, times: int | None = 1) -> Fault:
        return cls(FaultKind.HTTP_500, times=times)

    @classmethod
    def not_json(cls, times: int | None = 1, body: str | None = None) -> Fault:
        return cls(FaultKind.NOT_JSON, times=times, body=body)

    @classmethod
    def delay(cls, seconds: float, times: int | None = 1) -> Fault:
        return cls(FaultKind.DELAY, times=times, seconds=seconds)

    @classmethod
    def late_reply(cls, seconds: float, times: int | None = 1) -> Fault:
        return cls(FaultKind.LATE_REPLY, times=times, seconds=seconds)

    @classmethod
    def reset(cls, times: int | None = 1) -> Fault:
        return cls(FaultKind.RESET, times=times)

    @classmethod
    def service_unavailable(cls, times: int | None = 1) -> Fault:
        return cls(FaultKind.SERVICE_UNAVAILABLE, times=times)

    @classmethod
    def social_login_error(cls, code: int, times: int | None = 1) -> Fault:
        return cls(FaultKind.SOCIAL_LOGIN_ERROR, times=times, code=code)

    @classmethod
    def capture_error(
        cls,
        code: int = 510,
        error: str = "api_limit_error",
        description: str = "API call limit exceeded",
        times: int | None = 1,
    ) -> Fault:
        return cls(FaultKind.CAPTURE_ERROR, times=times, code=code, error=error, description=description)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from JSON (``POST /_emulator/faults``): ``{"kind": "delay", "seconds": 2, ...}``."""
        allowed = {"kind", "times", "seconds", "code", "error", "description", "body"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("fault needs a kind")
        return cls(**data)
