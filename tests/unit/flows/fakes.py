"""In-memory stand-ins for what the flows depend on (token_url.ports), each keeping a record of its calls,
and `FlowWorld`, the flows wired to them as wiring.py wires the real ones."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from tests.function_world import function_environment
from token_url.audit import AuditEventType
from token_url.deadline import Deadline
from token_url.errors import CaptureError, ConditionFailed, ServiceUnavailable
from token_url.flows.account import SessionAccounts
from token_url.flows.credentials import StoreCredentials
from token_url.flows.link import Link
from token_url.flows.profile import ProfileReader
from token_url.flows.recheck import AccountRecheck
from token_url.flows.sessions import Sessions
from token_url.flows.sign_in import SignIn
from token_url.flows.start import StartTokenUrl
from token_url.flows.token_post import TokenOutcome, TokenPost
from token_url.flows.unlink import Unlink
from token_url.models import (
    AccountSnapshot,
    AuthInfo,
    CaptureAccount,
    CaptureProfile,
    Intent,
    NonceRecord,
    PendingLink,
    SessionRecord,
    SocialProfile,
)
from token_url.settings import Settings

NOW = 1_900_000_000


# What an /entity read after a lost reply can meet instead of the account.
ENTITY_FAILURES = [
    ServiceUnavailable("capture", "entity: timeout", may_have_reached=True),
    CaptureError("entity", CaptureError.API_LIMIT_ERROR, "api_limit_error", "request-2"),
]
ENTITY_FAILURE_IDS = ["outage", "capture_error"]


def outcomes_printed(printed: str, metric: str) -> list[str]:
    """The `outcome` of every data point of `metric` in printed output (each is one EMF line)."""
    blobs = [json.loads(line) for line in printed.splitlines() if line.startswith('{"_aws"')]
    return [blob["outcome"] for blob in blobs if metric in blob]


FACEBOOK_ID = "https://www.facebook.com/profile.php?id=100"
GOOGLE_ID = "https://profiles.google.com/200"


def _domain(identifier: str) -> str:
    """Capture's profile `domain` of an identifier: its host without `www.` or `profiles.`."""
    host = urlsplit(identifier).hostname or identifier
    return host.removeprefix("www.").removeprefix("profiles.")


def settings_for_tests(**changes: Any) -> Settings:
    settings = Settings.from_environ(function_environment("http://127.0.0.1:9"))
    return settings.model_copy(update=changes)


def profile(identifier: str = GOOGLE_ID, provider: str | None = "Google", **extra: Any) -> AuthInfo:
    return AuthInfo(
        profile=SocialProfile(identifier=identifier, provider_name=provider, display_name="Alice"), **extra
    )


class SleepDrivenContext:
    """An invocation's context whose remaining time runs down only by the flows' (fake) sleeps."""

    aws_request_id = "request-1"
    function_name = "token-url"

    def __init__(self, remaining_ms: int, sleeps: list[float]) -> None:
        self.budget_ms = remaining_ms
        self._sleeps = sleeps

    def get_remaining_time_in_millis(self) -> int:
        return max(self.budget_ms - int(sum(self._sleeps) * 1000), 0)


class FakeClock:
    def __init__(self, now: int = NOW) -> None:
        self.current = now

    def now(self) -> int:
        return self.current


class FakeSessions:
    def __init__(self) -> None:
        self.records: dict[str, SessionRecord] = {}
        self.failing: set[str] = set()  # the calls that raise ServiceUnavailable
        self.linked_by_the_service: list[str] = []
        self.locks: dict[str, int] = {}  # lock key -> expires at

    def _call(self, name: str) -> None:
        if name in self.failing:
            raise ServiceUnavailable("dynamodb", name)

    def get(self, pk: str, *, now: int) -> SessionRecord | None:
        self._call("get")
        record = self.records.get(pk)
        return record if record is not None and record.is_live(now) else None

    def put(self, record: SessionRecord) -> None:
        self._call("put")
        self.records[record.pk] = record

    def delete(self, pk: str) -> SessionRecord | None:
        self._call("delete")
        return self.records.pop(pk, None)

    def drop_capture_token(self, pk: str) -> None:
        self._call("drop_capture_token")
        if pk in self.records:
            self.records[pk] = self.records[pk].model_copy(update={"capture_token": None})

    def add_linked(self, pk: str, identifier: str) -> None:
        self._call("add_linked")
        self.linked_by_the_service.append(identifier)
        if pk in self.records:
            self.records[pk] = self.records[pk].model_copy(update={"account_read_at": None})

    def keep_account_view(self, pk: str, account: AccountSnapshot, *, read_at: int) -> None:
        self._call("keep_account_view")
        if pk in self.records:
            update = {"account": account, "account_read_at": read_at}
            self.records[pk] = self.records[pk].model_copy(update=update)

    def lock_account(self, lock_key: str, *, now: int, seconds: int) -> bool:
        self._call("lock_account")
        if self.locks.get(lock_key, now - 1) >= now:
            return False
        self.locks[lock_key] = now + seconds
        return True

    def unlock_account(self, lock_key: str) -> None:
        self._call("unlock_account")
        self.locks.pop(lock_key, None)

    def hold_pending_link(self, pk: str, pending: PendingLink) -> None:
        self._call("hold_pending_link")
        if pk not in self.records:
            raise ConditionFailed("hold_pending_link")
        self.records[pk] = self.records[pk].model_copy(update={"pending_link": pending})

    def claim_pending_link(self, pk: str) -> SessionRecord | None:
        self._call("claim_pending_link")
        record = self.records.get(pk)
        if record is None or record.pending_link is None:
            return None
        self.records[pk] = record.model_copy(update={"pending_link": None})
        return record


class FakeNonces:
    def __init__(self) -> None:
        self.records: dict[str, NonceRecord] = {}

    def put(self, record: NonceRecord) -> None:
        self.records[record.pk] = record

    def consume(self, *, pk: str, browser: str, attempt_key: str, now: int) -> NonceRecord:
        record = self.records.get(pk)
        usable = (
            record is not None
            and record.expires_at > now
            and record.browser == browser
            and record.consumed_by in {None, attempt_key}
        )
        if record is None or not usable:
            raise ConditionFailed("consume_nonce")
        self.records[pk] = record.model_copy(update={"consumed_by": attempt_key})
        return self.records[pk]

    def retire(self, *, pk: str, attempt_key: str) -> None:
        record = self.records.get(pk)
        if record is None or record.consumed_by != attempt_key:
            raise ConditionFailed("retire_nonce")
        self.records[pk] = record.model_copy(update={"consumed_by": f"retired:{attempt_key}"})


class FakeVault:
    """Seals to an opaque handle; opens only with the session and field it was sealed for, as KMS does."""

    def __init__(self) -> None:
        self.sealed: dict[str, tuple[str, str, str]] = {}

    def seal(self, plaintext: str, *, session_pk: str, field: str) -> str:
        handle = f"sealed-{len(self.sealed)}"
        self.sealed[handle] = (plaintext, session_pk, field)
        return handle

    def open(self, ciphertext: str, *, session_pk: str, field: str) -> str:
        plaintext, sealed_pk, sealed_field = self.sealed[ciphertext]
        if (sealed_pk, sealed_field) != (session_pk, field):
            raise ValueError("sealed for another session or field")
        return plaintext


@dataclass
class FakeAudit:
    events: list[tuple[AuditEventType, dict[str, Any]]] = field(default_factory=list)

    def publish(self, event_type: AuditEventType, **fields: Any) -> None:
        self.events.append((event_type, fields))

    def types(self) -> list[AuditEventType]:
        return [event_type for event_type, _ in self.events]


class FakeIdentityCloud:
    def __init__(self) -> None:
        self.profiles: dict[str, AuthInfo] = {}
        self.auth_info_error: Exception | None = None
        self.link_error: Exception | None = None
        self.store_error: Exception | None = None
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.links: list[tuple[str, str]] = []  # (Social Login token, Registration access token)
        self.stored: dict[str, str] = {}
        self.accounts: dict[str, CaptureAccount] = {}  # by Registration access token
        self.account_error: Exception | None = None
        self.unlink_error: Exception | None = None
        self.read_timeouts: list[float | None] = []

    def calls_to(self, name: str) -> list[dict[str, str]]:
        return [arguments for called, arguments in self.calls if called == name]

    def auth_info(self, *, token: str, token_url: str) -> AuthInfo:
        self.calls.append(("auth_info", {"token": token, "token_url": token_url}))
        if self.auth_info_error is not None:
            raise self.auth_info_error
        return self.profiles[token]

    def link_account_native(self, *, token: str, access_token: str) -> None:
        self.calls.append(("link_account_native", {"token": token, "access_token": access_token}))
        if self.link_error is not None:
            raise self.link_error
        self.links.append((token, access_token))
        account = self.accounts.get(access_token)
        identifier = self.profiles[token].profile.identifier
        if account is not None and identifier not in {p.identifier for p in account.profiles}:
            added = [*account.profiles, CaptureProfile(identifier=identifier, domain=_domain(identifier))]
            self.accounts[access_token] = account.model_copy(update={"profiles": added})

    def read_account(self, *, access_token: str, read_timeout: float | None = None) -> CaptureAccount:
        self.calls.append(("read_account", {"access_token": access_token}))
        self.read_timeouts.append(read_timeout)
        if self.account_error is not None:
            raise self.account_error
        if access_token not in self.accounts:
            raise CaptureError("entity", CaptureError.INVALID_ACCESS_TOKEN, "invalid_access_token", "r-1")
        return self.accounts[access_token]

    def unlink(self, *, access_token: str, identifier: str) -> None:
        self.calls.append(("unlink", {"access_token": access_token, "identifier": identifier}))
        if self.unlink_error is not None:
            raise self.unlink_error
        account = self.accounts[access_token]
        remaining = [profile for profile in account.profiles if profile.identifier != identifier]
        self.accounts[access_token] = account.model_copy(update={"profiles": remaining})

    def add_or_update_access_token(self, *, identifier: str, token: str) -> None:
        self.calls.append(("add_or_update_access_token", {"identifier": identifier, "token": token}))
        if self.store_error is not None:
            raise self.store_error
        self.stored[identifier] = token


class InMemoryIdempotencyStore(BasePersistenceLayer):
    """Powertools' idempotency records in a dict; records never expire here (the tests are short)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}
        self.failing: set[str] = set()  # "put" (before the flow runs) and "update" (saving its result)

    def _get_record(self, idempotency_key: str) -> DataRecord:
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        if "put" in self.failing:
            raise RuntimeError("idempotency table unavailable")
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None:
            raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        if "update" in self.failing:
            raise RuntimeError("idempotency table unavailable")
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


class FlowWorld:
    """Every flow wired to the fakes as wiring.py wires the real ones: one clock, one deadline."""

    def __init__(self, settings: Settings | None = None, *, remaining_ms: int | None = 15_000) -> None:
        """`remaining_ms`: the invocation's time left, as the handler registers it; None: outside Lambda."""
        self.settings = settings or settings_for_tests()
        self.clock = FakeClock()
        self.deadline = Deadline()
        self.sessions = FakeSessions()
        self.nonces = FakeNonces()
        self.vault = FakeVault()
        self.audit = FakeAudit()
        self.cloud = FakeIdentityCloud()
        self.idempotency = InMemoryIdempotencyStore()
        self.sleeps: list[float] = []
        profiles = ProfileReader(client=self.cloud, token_endpoint=self.settings.token_endpoint)
        self.token_urls = StartTokenUrl(
            settings=self.settings, sessions=self.sessions, nonces=self.nonces, clock=self.clock
        )
        self.recheck = AccountRecheck(client=self.cloud, deadline=self.deadline, sleep=self.sleeps.append)
        self.link = Link(
            settings=self.settings,
            profiles=profiles,
            client=self.cloud,
            sessions=self.sessions,
            vault=self.vault,
            audit=self.audit,
            clock=self.clock,
            recheck=self.recheck,
        )
        sign_in = SignIn(
            settings=self.settings,
            profiles=profiles,
            sessions=self.sessions,
            vault=self.vault,
            audit=self.audit,
        )
        self.token_post = TokenPost(
            nonces=self.nonces,
            sessions=self.sessions,
            sign_in=sign_in,
            link=self.link,
            replay_store=self.idempotency,
            replay_window_seconds=self.settings.replay_window_seconds,
            deadline=self.deadline,
            clock=self.clock,
            sleep=self.sleeps.append,
        )
        self.accounts = SessionAccounts(
            client=self.cloud, sessions=self.sessions, vault=self.vault, clock=self.clock
        )
        self.session_flows = Sessions(
            client=self.cloud,
            accounts=self.accounts,
            sessions=self.sessions,
            vault=self.vault,
            audit=self.audit,
            clock=self.clock,
            max_lifetime_seconds=self.settings.session_ttl_seconds,
        )
        self.unlink = Unlink(
            client=self.cloud,
            accounts=self.accounts,
            sessions=self.sessions,
            audit=self.audit,
            clock=self.clock,
            recheck=self.recheck,
        )
        self.credentials = StoreCredentials(client=self.cloud, audit=self.audit)
        if remaining_ms is not None:  # what wiring.Service.begin_invocation does
            context = cast(LambdaContext, SleepDrivenContext(remaining_ms, self.sleeps))
            self.token_post.register_context(context)
            self.deadline.start(context)

    # ------------------------------------------------------------ driving the flows as a browser would

    _tokens = itertools.count()

    def issue_token(self, auth: AuthInfo | None = None) -> str:
        """A Social Login token that auth_info answers with `auth` (a Google profile by default)."""
        token = f"social-login-token-{next(self._tokens):04d}"
        self.cloud.profiles[token] = auth or profile()
        return token

    def start_token_url(self, intent: Intent, *, session_id: str | None = None) -> tuple[str, str]:
        """(nonce, browser binding) of a new token URL."""
        started = self.token_urls.start(intent, browser=None, session_id=session_id)
        return started.token_url.split("nonce=", 1)[1], started.browser

    def registration_account(
        self, access_token: str = "registration-access-token", *linked: str, has_password: bool = True
    ) -> CaptureAccount:
        """The Capture account `access_token` belongs to, with the social identities `linked`."""
        account = CaptureAccount(
            uuid=f"uuid-of-{access_token}",
            display_name="Alice",
            email="alice@example.com",
            profiles=[
                CaptureProfile(identifier=identifier, domain=_domain(identifier)) for identifier in linked
            ],
            has_password=has_password,
        )
        self.cloud.accounts[access_token] = account
        return account

    def capture_session(self, access_token: str = "registration-access-token") -> str:
        """A browser signed in to Registration (its account made if there is none yet): its session id."""
        if access_token not in self.cloud.accounts:
            self.registration_account(access_token)
        return self.session_flows.create_capture_session(
            access_token=access_token, expires_in=3600, previous_session_id=None
        ).session_id

    def shown_links(self, session_id: str) -> list[str]:
        """The identifiers GET /session shows for the session."""
        view = self.session_flows.read(session_id)
        return [linked.identifier for linked in view.linked] if view else []

    def submit(
        self, token: str, nonce: str | None, browser: str | None, previous_session_id: str | None = None
    ) -> TokenOutcome:
        return self.token_post.complete(
            token=token, nonce=nonce, browser=browser, previous_session_id=previous_session_id
        )
