"""POST, GET and DELETE /session's flow."""

from __future__ import annotations

from tests.unit.flows.fakes import NOW, FlowWorld
from token_url.audit import AuditEventType
from token_url.flows.shared import CAPTURE_TOKEN_FIELD, session_key
from token_url.models import Intent


def test_a_capture_session_holds_the_access_token_sealed_to_it(world: FlowWorld) -> None:
    world.registration_account("registration-access-token")
    created = world.session_flows.create_capture_session(
        access_token="registration-access-token", expires_in=900, previous_session_id=None
    )

    pk = session_key(created.session_id)
    record = world.sessions.records[pk]
    assert record.capture_token is not None
    assert record.capture_token != "registration-access-token"
    opened = world.vault.open(record.capture_token, session_pk=pk, field=CAPTURE_TOKEN_FIELD)
    assert opened == "registration-access-token"
    assert (record.created_at, record.expires_at, created.lifetime_seconds) == (NOW, NOW + 900, 900)
    assert created.view.capture is True
    assert record.account_uuid == "uuid-of-registration-access-token"
    assert world.audit.events == [
        (
            AuditEventType.SESSION_CREATED,
            {"session_pk": pk, "account_uuid": "uuid-of-registration-access-token"},
        )
    ]


def test_a_new_capture_session_replaces_the_browsers_previous_one(world: FlowWorld) -> None:
    previous = world.capture_session()
    world.registration_account("another-access-token")

    created = world.session_flows.create_capture_session(
        access_token="another-access-token", expires_in=900, previous_session_id=previous
    )

    assert set(world.sessions.records) == {session_key(created.session_id)}


def test_a_session_is_read_while_it_lives(world: FlowWorld) -> None:
    session_id = world.capture_session()

    view = world.session_flows.read(session_id)
    assert view is not None
    assert (view.capture, view.linked) == (True, [])
    world.clock.current += 3600
    assert world.session_flows.read(session_id) is None
    assert world.session_flows.read("unknown") is None


def test_signing_out_ends_the_session_and_is_audited(world: FlowWorld) -> None:
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    session_id = world.submit(world.issue_token(), nonce, browser).session_id
    assert session_id is not None

    world.session_flows.sign_out(session_id)

    assert world.sessions.records == {}
    assert world.audit.events[-1] == (
        AuditEventType.SIGNED_OUT,
        {
            "provider": "Google",
            "identifier": "https://profiles.google.com/200",
            "session_pk": session_key(session_id),
            "account_uuid": None,
        },
    )


def test_signing_out_of_no_live_session_changes_nothing_and_publishes_nothing(world: FlowWorld) -> None:
    expired = world.capture_session()
    world.clock.current += 3600
    published = len(world.audit.events)

    world.session_flows.sign_out(expired)
    world.session_flows.sign_out("never-existed")

    assert world.sessions.records == {}
    assert len(world.audit.events) == published
