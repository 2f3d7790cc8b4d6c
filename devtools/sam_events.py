"""The files in events/: HTTP API (payload 2.0) events for `sam local invoke -e`, and the state each needs.

Each event carries fixed one-time values, tokens and cookies, so that it gives the outcome its name
says. `seed()` writes the DynamoDB items those values refer to (with the function's own store, vault
and digests, so the items are exactly what the function writes) and teaches the Identity Cloud
emulator the matching tokens. `make run` seeds at start: each event works once per start of the
stack, as one-time values do.
"""

from __future__ import annotations

import base64
import json
import pathlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from emulator import PROVIDERS, IdentityCloudEmulator
from emulator.profiles import identifier_for
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE
from token_url.flows.shared import CAPTURE_TOKEN_FIELD, session_key
from token_url.models import Intent, NonceRecord, SessionRecord
from token_url.secure_values import digest
from token_url.store import NonceStore, SessionStore
from token_url.vault import Vault

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient

EVENTS_DIR = pathlib.Path(__file__).resolve().parent.parent / "events"
ENV_FILE = EVENTS_DIR / "env.json"
SEEDED_LIFETIME_SECONDS = 24 * 3600
"""Seeded one-time values and sessions live a day, so events can be tried long after `make run` starts."""

# The social identity every event signs in or links, and the Registration account links go to.
EVENT_USER = "event-user"
SIGN_IN_IDENTIFIER = identifier_for(PROVIDERS["google"], EVENT_USER)
LINK_IDENTIFIER = identifier_for(PROVIDERS["facebook"], EVENT_USER)
REGISTRATION_USER_ID = "event-registration-user"
# The Registration session the link's one-time value was started from. The link's token POST is
# cross-site and carries no session cookie: the one-time value's item names the session.
LINK_SESSION_ID = "EventLinkSession-started-by-POST-token-url0"
REGISTRATION_ACCESS_TOKEN = "EventRegistrationToken01"  # noqa: S105 - a fixed value of the sample events


@dataclass(frozen=True)
class SampleEvent:
    """One file of events/, with the values a seeder needs read from the event itself."""

    name: str
    event: dict[str, Any]

    def cookie(self, name: str) -> str | None:
        for raw in self.event.get("cookies") or []:
            key, _, value = str(raw).partition("=")
            if key.strip() == name:
                return value
        return None

    @property
    def nonce(self) -> str:
        values = parse_qs(self.event.get("rawQueryString", "")).get("nonce", [])
        if len(values) != 1:
            raise ValueError(f"{self.name}: the event's query has no one-time value")
        return str(values[0])

    @property
    def body(self) -> bytes:
        raw = self.event.get("body") or ""
        return base64.b64decode(raw) if self.event.get("isBase64Encoded") else raw.encode()

    @property
    def form_token(self) -> str:
        tokens = parse_qs(self.body.decode()).get("token", [])
        if len(tokens) != 1:
            raise ValueError(f"{self.name}: the event's form has no token")
        return str(tokens[0])

    def required_cookie(self, name: str) -> str:
        value = self.cookie(name)
        if value is None:
            raise ValueError(f"{self.name}: the event has no {name} cookie")
        return value


def load_events(directory: pathlib.Path = EVENTS_DIR) -> dict[str, SampleEvent]:
    """Every event file (not env.json) by name without `.json`."""
    return {
        path.stem: SampleEvent(path.stem, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(directory.glob("*.json"))
        if path != directory / ENV_FILE.name
    }


@dataclass(frozen=True)
class EventWorld:
    """Where the events' state lives: the function's tables and key, and the emulated Identity Cloud."""

    emulator: IdentityCloudEmulator
    nonces: NonceStore
    sessions: SessionStore
    vault: Vault
    token_endpoint: str
    """PUBLIC_BASE_URL/token: Social Login tokens are issued for this URL plus the one-time value."""
    now: int

    @classmethod
    def connect(
        cls,
        *,
        dynamodb: DynamoDBClient,
        kms: KMSClient,
        nonces_table: str,
        sessions_table: str,
        key_id: str,
        emulator: IdentityCloudEmulator,
        token_endpoint: str,
    ) -> EventWorld:
        """The world of a function whose tables and key are these, now."""
        return cls(
            emulator=emulator,
            nonces=NonceStore(client=dynamodb, table=nonces_table),
            sessions=SessionStore(client=dynamodb, table=sessions_table),
            vault=Vault(kms_client=kms, key_id=key_id),
            token_endpoint=token_endpoint,
            now=int(time.time()),
        )

    def one_time_value(
        self,
        event: SampleEvent,
        intent: Intent,
        *,
        session: str | None = None,
        consumed_by: str | None = None,
    ) -> None:
        self.nonces.put(
            NonceRecord(
                pk=digest("nonce", event.nonce),
                intent=intent,
                browser=digest("browser", event.required_cookie(BROWSER_COOKIE)),
                session=session,
                created_at=self.now,
                expires_at=self.now + SEEDED_LIFETIME_SECONDS,
                consumed_by=consumed_by,
            )
        )

    def social_token(self, event: SampleEvent, identifier: str) -> None:
        self.emulator.issue_token(
            f"{self.token_endpoint}?nonce={event.nonce}",
            identifier,
            token=event.form_token,
            ttl_seconds=SEEDED_LIFETIME_SECONDS,
        )

    def session(self, session_id: str, **fields: Any) -> str:
        pk = session_key(session_id)
        self.sessions.put(
            SessionRecord(pk=pk, created_at=self.now, expires_at=self.now + SEEDED_LIFETIME_SECONDS, **fields)
        )
        return pk


def _nothing(world: EventWorld, event: SampleEvent) -> None:
    """The event needs no state (or must find none)."""


def _sign_in_ready(world: EventWorld, event: SampleEvent) -> None:
    world.one_time_value(event, Intent.SIGN_IN)
    world.social_token(event, SIGN_IN_IDENTIFIER)


def _link_ready(world: EventWorld, event: SampleEvent) -> None:
    world.emulator.mint_access_token(
        REGISTRATION_USER_ID, SEEDED_LIFETIME_SECONDS, token=REGISTRATION_ACCESS_TOKEN
    )
    session_pk = session_key(LINK_SESSION_ID)
    world.session(
        LINK_SESSION_ID,
        capture_token=world.vault.seal(
            REGISTRATION_ACCESS_TOKEN, session_pk=session_pk, field=CAPTURE_TOKEN_FIELD
        ),
    )
    world.one_time_value(event, Intent.LINK, session=session_pk)
    world.social_token(event, LINK_IDENTIFIER)


EARLIER_ATTEMPT = digest("attempt", "an earlier submission")


def _sign_in_already_used(world: EventWorld, event: SampleEvent) -> None:
    """The one-time value was spent by an earlier submission; the token itself would still be good."""
    world.one_time_value(event, Intent.SIGN_IN, consumed_by=EARLIER_ATTEMPT)
    world.social_token(event, SIGN_IN_IDENTIFIER)


def _one_time_value_only(world: EventWorld, event: SampleEvent) -> None:
    """A live one-time value, so that only the malformed body can be what is refused."""
    world.one_time_value(event, Intent.SIGN_IN)


def _registration_token(world: EventWorld, event: SampleEvent) -> None:
    access_token = json.loads(event.body)["access_token"]
    world.emulator.mint_access_token(REGISTRATION_USER_ID, SEEDED_LIFETIME_SECONDS, token=access_token)


def _signed_in_session(world: EventWorld, event: SampleEvent) -> None:
    world.session(
        event.required_cookie(SESSION_COOKIE),
        identifier=SIGN_IN_IDENTIFIER,
        provider="Google",
        display_name="Event User",
    )


SEEDERS: Mapping[str, Callable[[EventWorld, SampleEvent], None]] = {
    "health": _nothing,
    "token-url-sign-in": _nothing,
    "token-sign-in": _sign_in_ready,
    "token-link": _link_ready,
    "token-replayed": _sign_in_already_used,
    "token-missing-token": _one_time_value_only,
    "token-wrong-content-type": _one_time_value_only,
    "session-create": _registration_token,
    "session-create-wrong-content-type": _nothing,
    "session-read": _signed_in_session,
    "session-delete": _signed_in_session,
    "credentials-store": _nothing,
}


def seed(world: EventWorld, events: Mapping[str, SampleEvent] | None = None) -> list[str]:
    """Create the state of every event file; a file without a seeder here is an error, not a skip."""
    events = load_events() if events is None else events
    unknown = sorted(set(events) - set(SEEDERS))
    if unknown:
        raise ValueError(f"no seeder for events/{', events/'.join(unknown)}.json in devtools/sam_events.py")
    for name, event in events.items():
        SEEDERS[name](world, event)
    return sorted(events)
