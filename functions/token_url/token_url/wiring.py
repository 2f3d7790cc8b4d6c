"""Everything the handler uses, built once per container (at import of app.py) from validated settings:
the boto3 clients, the HTTP session, the apiKey, the audit trail, the stores, the vault and the flows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.config import Config

from token_url.api_key import ApiKeySource
from token_url.audit import AuditTrail, request_caller
from token_url.deadline import Deadline
from token_url.flows.account import SessionAccounts
from token_url.flows.credentials import StoreCredentials
from token_url.flows.link import Link
from token_url.flows.profile import ProfileReader
from token_url.flows.recheck import AccountRecheck
from token_url.flows.sessions import Sessions
from token_url.flows.shared import SystemClock
from token_url.flows.sign_in import SignIn
from token_url.flows.start import StartTokenUrl
from token_url.flows.token_post import TokenPost
from token_url.flows.unlink import Unlink
from token_url.identity_cloud import CaptureFlow, IdentityCloudClient, new_http_session
from token_url.observability import logger
from token_url.settings import ConfigurationError, Settings
from token_url.store import NonceStore, SessionStore
from token_url.vault import Vault

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_AWS_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
# Its own timeouts and no botocore retry: AuditTrail retries, within the deadline, after the outcome is set.
_EVENTS_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 1})


@dataclass
class Service:
    """The container's objects; app.py holds one, and each invocation starts with `begin_invocation`."""

    settings: Settings
    deadline: Deadline
    clock: SystemClock
    dynamodb: DynamoDBClient
    aws_clients: tuple[BaseClient, ...]
    """Every boto3 client of the container (their pools are renewed after a SnapStart restore)."""
    identity_cloud: IdentityCloudClient
    api_key_source: ApiKeySource
    audit_trail: AuditTrail
    token_urls: StartTokenUrl
    token_post: TokenPost
    link: Link
    sessions: Sessions
    unlink: Unlink
    credentials: StoreCredentials

    def begin_invocation(self, event: dict[str, Any], context: LambdaContext) -> None:
        """Tell the objects built once what they need of this invocation, before any flow runs."""
        self.token_post.register_context(context)  # the idempotency record's in-progress expiry
        self.deadline.start(context)
        self.audit_trail.register_caller(request_caller(event))


def load_settings(environ: Mapping[str, str]) -> Settings:
    """The settings, validated; a problem is logged (the one line an operator sees) and stops the start."""
    try:
        return Settings.from_environ(environ)
    except ConfigurationError as config_error:
        logger.error(str(config_error))
        raise


def build_service(settings: Settings) -> Service:
    deadline, clock = Deadline(), SystemClock()
    dynamodb = boto3.client("dynamodb", config=_AWS_CONFIG)
    secrets_manager = boto3.client("secretsmanager", config=_AWS_CONFIG)
    events = boto3.client("events", config=_EVENTS_CONFIG)
    kms = boto3.client("kms", config=_AWS_CONFIG)
    api_key_source = ApiKeySource(
        secrets_client=secrets_manager,
        secret_id=settings.social_login_api_key_secret,
        max_age=settings.secret_max_age_seconds,
    )
    audit_trail = AuditTrail(
        client=events,
        bus_name=settings.audit_event_bus,
        handle_key=api_key_source,
        seconds_left=deadline.seconds_left,
    )
    client = _identity_cloud_client(settings, api_key_source, deadline)
    sessions = SessionStore(client=dynamodb, table=settings.sessions_table)
    nonces = NonceStore(client=dynamodb, table=settings.nonces_table)
    vault = Vault(kms_client=kms, key_id=settings.credentials_key_id)
    profiles = ProfileReader(client=client, token_endpoint=settings.token_endpoint)
    accounts = SessionAccounts(client=client, sessions=sessions, vault=vault, clock=clock)
    recheck = AccountRecheck(client=client, deadline=deadline)
    link = Link(
        settings=settings,
        profiles=profiles,
        client=client,
        sessions=sessions,
        vault=vault,
        audit=audit_trail,
        clock=clock,
        recheck=recheck,
    )
    sign_in = SignIn(settings=settings, profiles=profiles, sessions=sessions, vault=vault, audit=audit_trail)
    token_post = TokenPost(
        nonces=nonces,
        sessions=sessions,
        sign_in=sign_in,
        link=link,
        replay_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb),
        replay_window_seconds=settings.replay_window_seconds,
        deadline=deadline,
        clock=clock,
    )
    return Service(
        settings=settings,
        deadline=deadline,
        clock=clock,
        dynamodb=dynamodb,
        aws_clients=(dynamodb, secrets_manager, events, kms),
        identity_cloud=client,
        api_key_source=api_key_source,
        audit_trail=audit_trail,
        token_urls=StartTokenUrl(settings=settings, sessions=sessions, nonces=nonces, clock=clock),
        token_post=token_post,
        link=link,
        sessions=Sessions(
            client=client,
            accounts=accounts,
            sessions=sessions,
            vault=vault,
            audit=audit_trail,
            clock=clock,
            max_lifetime_seconds=settings.session_ttl_seconds,
        ),
        unlink=Unlink(
            client=client,
            accounts=accounts,
            sessions=sessions,
            audit=audit_trail,
            clock=clock,
            recheck=recheck,
        ),
        credentials=StoreCredentials(client=client, audit=audit_trail),
    )


def _identity_cloud_client(
    settings: Settings, api_key_source: ApiKeySource, deadline: Deadline
) -> IdentityCloudClient:
    return IdentityCloudClient(
        social_login_base_url=settings.social_login_base_url,
        capture_base_url=settings.capture_base_url,
        capture_flow=CaptureFlow(
            client_id=settings.capture_client_id,
            flow=settings.capture_flow,
            flow_version=settings.capture_flow_version,
            locale=settings.capture_locale,
            redirect_uri=settings.capture_redirect_uri,
        ),
        api_key=api_key_source,
        http=new_http_session(),
        timeout=(settings.upstream_connect_timeout, settings.upstream_read_timeout),
        seconds_left=deadline.seconds_left,
    )
