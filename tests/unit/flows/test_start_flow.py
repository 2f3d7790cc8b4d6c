"""POST /token-url's flow: a one-time value bound to the browser, and to its session for a link."""

from __future__ import annotations

import pytest

from tests.unit.flows.fakes import NOW, FlowWorld
from token_url.flows.shared import session_key
from token_url.flows.start import NotSignedIn
from token_url.models import Intent
from token_url.secure_values import digest

BROWSER = "b" * 43


def test_a_sign_in_url_carries_a_one_time_value_bound_to_the_browser(world: FlowWorld) -> None:
    started = world.token_urls.start(Intent.SIGN_IN, browser=BROWSER, session_id=None)

    assert started.browser == BROWSER
    endpoint, nonce = started.token_url.split("?nonce=")
    assert endpoint == world.settings.token_endpoint
    [record] = world.nonces.records.values()
    assert record.pk == digest("nonce", nonce)
    assert record.browser == digest("browser", BROWSER)
    assert (record.intent, record.session, record.consumed_by) == (Intent.SIGN_IN, None, None)
    assert record.expires_at == NOW + world.settings.token_url_ttl_seconds


def test_a_browser_without_a_binding_is_given_a_new_one(world: FlowWorld) -> None:
    first = world.token_urls.start(Intent.SIGN_IN, browser=None, session_id=None)
    second = world.token_urls.start(Intent.SIGN_IN, browser=None, session_id=None)

    assert len(first.browser) == 43
    assert first.browser != second.browser
    assert {record.browser for record in world.nonces.records.values()} == {
        digest("browser", first.browser),
        digest("browser", second.browser),
    }


def test_a_sign_in_records_the_session_it_will_replace(world: FlowWorld) -> None:
    world.token_urls.start(Intent.SIGN_IN, browser=BROWSER, session_id="s" * 43)

    [record] = world.nonces.records.values()
    assert record.session == session_key("s" * 43)


def test_a_link_needs_a_registration_session(world: FlowWorld) -> None:
    with pytest.raises(NotSignedIn):
        world.token_urls.start(Intent.LINK, browser=BROWSER, session_id=None)
    with pytest.raises(NotSignedIn):
        world.token_urls.start(Intent.LINK, browser=BROWSER, session_id="unknown-session")

    assert world.nonces.records == {}


def test_a_social_sign_in_session_cannot_start_a_link(world: FlowWorld) -> None:
    """Only a session holding a Registration access token can link."""
    nonce, browser = world.start_token_url(Intent.SIGN_IN)
    session_id = world.submit(world.issue_token(), nonce, browser).session_id
    assert session_id is not None

    with pytest.raises(NotSignedIn):
        world.token_urls.start(Intent.LINK, browser=browser, session_id=session_id)


def test_a_link_url_is_bound_to_the_registration_session(world: FlowWorld) -> None:
    session_id = world.capture_session()

    world.token_urls.start(Intent.LINK, browser=BROWSER, session_id=session_id)

    [record] = world.nonces.records.values()
    assert (record.intent, record.session) == (Intent.LINK, session_key(session_id))
