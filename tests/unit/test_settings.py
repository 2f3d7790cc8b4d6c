"""Settings.from_environ: a full environment, each missing or malformed variable, and init failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from token_url.settings import ConfigurationError, Settings

FUNCTION_DIR = Path(__file__).resolve().parents[2] / "functions" / "token_url"

VALID_ENV: dict[str, str] = {
    "SOCIAL_LOGIN_BASE_URL": "https://myapp.rpxnow.com",
    "SOCIAL_LOGIN_API_KEY_SECRET": "token-url/social-login-api-key",
    "CAPTURE_BASE_URL": "https://myapp.us.janraincapture.com",
    "CAPTURE_CLIENT_ID": "12345abcde12345abcde12345abcde12",
    "CAPTURE_FLOW": "standard",
    "CAPTURE_FLOW_VERSION": "20190618143040022299",
    "CAPTURE_LOCALE": "en-US",
    "CAPTURE_REDIRECT_URI": "https://app.example.test/",
    "PUBLIC_BASE_URL": "https://api.example.test",
    "APP_URL": "https://app.example.test/account",
    "SESSIONS_TABLE": "SessionsTable",
    "NONCES_TABLE": "NoncesTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "CREDENTIALS_KEY_ID": "alias/token-url-credentials",
    "AUDIT_EVENT_BUS": "token-url-audit",
}
REQUIRED = sorted(VALID_ENV)


def env(**changes: str | None) -> dict[str, str]:
    merged: dict[str, str | None] = {**VALID_ENV, **changes}
    return {name: value for name, value in merged.items() if value is not None}


def config_error(**changes: str | None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environ(env(**changes))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_full_environment_gives_every_value_and_the_defaults() -> None:
    settings = Settings.from_environ({**VALID_ENV, "UNRELATED": "ignored", "PATH": "/usr/bin"})

    assert settings.social_login_base_url == "https://myapp.rpxnow.com"
    assert settings.social_login_api_key_secret == "token-url/social-login-api-key"
    assert settings.capture_base_url == "https://myapp.us.janraincapture.com"
    assert settings.capture_client_id == "12345abcde12345abcde12345abcde12"
    assert settings.capture_flow == "standard"
    assert settings.capture_flow_version == "20190618143040022299"
    assert settings.capture_locale == "en-US"
    assert settings.capture_redirect_uri == "https://app.example.test/"
    assert settings.public_base_url == "https://api.example.test"
    assert settings.app_url == "https://app.example.test/account"
    assert settings.sessions_table == "SessionsTable"
    assert settings.nonces_table == "NoncesTable"
    assert settings.idempotency_table == "IdempotencyTable"
    assert settings.credentials_key_id == "alias/token-url-credentials"
    assert settings.audit_event_bus == "token-url-audit"
    assert settings.session_ttl_seconds == 12 * 3600
    assert settings.token_url_ttl_seconds == 600
    assert settings.replay_window_seconds == 600
    assert settings.upstream_connect_timeout == 2.0
    assert settings.upstream_read_timeout == 6.0
    assert settings.secret_max_age_seconds == 300
    assert settings.link_confirmation == "off"
    assert settings.confirms_links is False
    assert settings.link_confirmation_seconds == 120
    assert settings.app_origin == "https://app.example.test"
    assert settings.token_endpoint == "https://api.example.test/token"


def test_optional_numbers_are_read_from_their_strings() -> None:
    settings = Settings.from_environ(
        env(UPSTREAM_CONNECT_TIMEOUT="1", UPSTREAM_READ_TIMEOUT="1.5", SESSION_TTL_SECONDS="3600")
    )

    assert settings.upstream_connect_timeout == 1.0
    assert settings.upstream_read_timeout == 1.5
    assert settings.session_ttl_seconds == 3600


@pytest.mark.parametrize("variable", REQUIRED)
def test_each_missing_required_variable_is_named_in_one_line(variable: str) -> None:
    assert config_error(**{variable: None}) == f"configuration error: {variable} is not set"


def test_every_field_without_default_is_in_the_required_list() -> None:
    required = {name.upper() for name, field in Settings.model_fields.items() if field.is_required()}
    assert required == set(REQUIRED)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SESSION_TTL_SECONDS", "abc", "valid integer"),
        ("SESSION_TTL_SECONDS", "10", "greater than or equal to 300"),
        ("UPSTREAM_READ_TIMEOUT", "0", "greater than 0"),
        ("CAPTURE_CLIENT_ID", "short", "should match pattern"),
        ("CAPTURE_LOCALE", "english", "should match pattern"),
        ("SESSIONS_TABLE", "ab", "at least 3 characters"),
        ("AUDIT_EVENT_BUS", "", "should match pattern"),
        ("AUDIT_EVENT_BUS", "token url audit", "should match pattern"),
        ("AUDIT_EVENT_BUS", "arn:aws:sqs:us-east-1:123456789012:token-url-audit", "should match pattern"),
    ],
)
def test_malformed_value_names_the_variable(variable: str, value: str, reason: str) -> None:
    message = config_error(**{variable: value})

    assert message.startswith(f"configuration error: {variable} ")
    assert reason in message


@pytest.mark.parametrize("variable", ["SOCIAL_LOGIN_BASE_URL", "CAPTURE_BASE_URL", "PUBLIC_BASE_URL"])
def test_http_base_url_is_refused_for_a_public_host(variable: str) -> None:
    message = config_error(**{variable: "http://myapp.example.com"})

    assert message == (
        f"configuration error: {variable} must use https (http is accepted only for loopback hosts)"
    )


def test_http_app_url_is_refused_for_a_public_host() -> None:
    assert "must use https" in config_error(APP_URL="http://app.example.test/account")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://127.0.0.2:5000/", "http://127.0.0.2:5000"),
        ("http://localhost:3001/", "http://localhost:3001"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_http_base_url_is_accepted_for_loopback(value: str, expected: str) -> None:
    settings = Settings.from_environ(env(SOCIAL_LOGIN_BASE_URL=value, CAPTURE_BASE_URL=value))

    assert settings.social_login_base_url == expected
    assert settings.capture_base_url == expected


@pytest.mark.parametrize("value", ["HEAD", "head", "Head"])
def test_flow_version_head_is_refused(value: str) -> None:
    message = config_error(CAPTURE_FLOW_VERSION=value)

    assert message.startswith("configuration error: CAPTURE_FLOW_VERSION ")
    assert "HEAD" in message


def test_app_origin_drops_the_path_of_the_app_url() -> None:
    settings = Settings.from_environ(env(APP_URL="https://app.example.test:8443/account/settings?tab=1"))

    assert settings.app_url == "https://app.example.test:8443/account/settings?tab=1"
    assert settings.app_origin == "https://app.example.test:8443"


def test_app_origin_is_serialised_like_a_browser_origin_header() -> None:
    """Browsers send Origin with a lower-case host and without the scheme's default port (RFC 6454)."""
    settings = Settings.from_environ(env(APP_URL="https://App.Example.Test:443/account"))

    assert settings.app_origin == "https://app.example.test"


@pytest.mark.parametrize("variable", ["SOCIAL_LOGIN_BASE_URL", "CAPTURE_BASE_URL", "PUBLIC_BASE_URL"])
def test_trailing_slash_is_stripped_from_base_urls(variable: str) -> None:
    settings = Settings.from_environ(env(**{variable: "https://host.example.test/"}))

    assert getattr(settings, variable.lower()) == "https://host.example.test"


def test_token_endpoint_has_a_single_slash_after_a_base_url_with_trailing_slash() -> None:
    settings = Settings.from_environ(env(PUBLIC_BASE_URL="https://api.example.test/"))

    assert settings.token_endpoint == "https://api.example.test/token"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("https://host.example.test/api", "must be a base URL without a path"),
        ("https://host.example.test?x=1", "must not have a query or fragment"),
        ("https://host.example.test#frag", "must not have a query or fragment"),
        ("host.example.test", "must be an absolute http(s) URL"),
        ("ftp://host.example.test", "must be an absolute http(s) URL"),
        ("", "must be an absolute http(s) URL"),
    ],
)
def test_base_url_must_be_a_bare_absolute_url(value: str, reason: str) -> None:
    assert config_error(SOCIAL_LOGIN_BASE_URL=value) == (
        f"configuration error: SOCIAL_LOGIN_BASE_URL {reason}"
    )


@pytest.mark.parametrize("value", ["http://app.example.test/", "https://app.example.test/", "https:x"])
def test_capture_redirect_uri_accepts_http_and_https_prefixes(value: str) -> None:
    assert Settings.from_environ(env(CAPTURE_REDIRECT_URI=value)).capture_redirect_uri == value


@pytest.mark.parametrize("value", ["ftp://app.example.test/", "app.example.test", "/callback", "HTTPS://x"])
def test_capture_redirect_uri_must_start_with_http_or_https(value: str) -> None:
    assert config_error(CAPTURE_REDIRECT_URI=value) == (
        "configuration error: CAPTURE_REDIRECT_URI must begin with http: or https:"
    )


def test_settings_are_frozen() -> None:
    settings = Settings.from_environ(VALID_ENV)

    with pytest.raises(ValueError, match="frozen"):
        settings.app_url = "https://other.example.test/"  # type: ignore[misc]


def test_import_of_the_handler_without_app_url_stops_with_one_line_naming_it() -> None:
    child_env = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(("AWS_", "POWERTOOLS_")) or name in {"PATH", "HOME", "LANG"}
    }
    child_env.update(VALID_ENV)
    del child_env["APP_URL"]

    completed = subprocess.run(
        [sys.executable, "-c", "import token_url.app"],
        cwd=FUNCTION_DIR,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode != 0
    expected = "configuration error: APP_URL is not set"
    assert expected in completed.stdout + completed.stderr
    # The structured (Powertools) log line carries exactly that message, on one line.
    messages = [
        json.loads(line).get("message")
        for line in completed.stdout.splitlines()
        if line.startswith("{") and line.endswith("}")
    ]
    assert expected in messages


def test_replay_window_shorter_than_the_token_url_lifetime_is_refused() -> None:
    from token_url.settings import ConfigurationError, Settings  # noqa: PLC0415

    env = dict(VALID_ENV)
    env.update({"TOKEN_URL_TTL_SECONDS": "900", "REPLAY_WINDOW_SECONDS": "600"})
    with pytest.raises(
        ConfigurationError,
        match=r"^configuration error: REPLAY_WINDOW_SECONDS must be at least TOKEN_URL_TTL_SECONDS$",
    ):
        Settings.from_environ(env)


# ---- TOKEN_POST_ORIGINS ----------------------------------------------------------------------------


def test_token_post_origins_default_to_social_login_and_the_app() -> None:
    settings = Settings.from_environ(env(APP_URL="https://App.Example.Test:443/account"))

    assert settings.trusted_token_post_origins == {"https://myapp.rpxnow.com", "https://app.example.test"}


def test_token_post_origins_replace_the_default_and_are_serialised_like_origin_headers() -> None:
    settings = Settings.from_environ(
        env(TOKEN_POST_ORIGINS=" https://Login.Example.COM:443 , https://myapp.rpxnow.com:8443,null")
    )

    assert settings.trusted_token_post_origins == {
        "https://login.example.com",
        "https://myapp.rpxnow.com:8443",
        "null",
    }


def test_a_null_origin_is_trusted_only_when_listed() -> None:
    assert "null" not in Settings.from_environ(env()).trusted_token_post_origins


@pytest.mark.parametrize(
    "entry",
    [
        "https://myapp.rpxnow.com/",
        "https://myapp.rpxnow.com/path",
        "https://myapp.rpxnow.com?x=1",
        "myapp.rpxnow.com",
        "ftp://myapp.rpxnow.com",
        "http://myapp.rpxnow.com",
        "https://user@myapp.rpxnow.com",
        "https://myapp.rpxnow.com:port",
        "NULL",
        "*",
    ],
)
def test_a_token_post_origin_that_is_not_an_origin_fails_start_up_naming_the_variable(entry: str) -> None:
    message = config_error(TOKEN_POST_ORIGINS=f"https://myapp.rpxnow.com,{entry}")

    assert message.startswith("configuration error: TOKEN_POST_ORIGINS ")


def test_a_list_of_token_post_origins_without_an_origin_fails_start_up() -> None:
    assert config_error(TOKEN_POST_ORIGINS=" , ").startswith("configuration error: TOKEN_POST_ORIGINS ")


def test_an_empty_token_post_origins_means_the_default() -> None:
    assert Settings.from_environ(env(TOKEN_POST_ORIGINS="")).trusted_token_post_origins == {
        "https://myapp.rpxnow.com",
        "https://app.example.test",
    }


# ---------------------------------------------------------------- CREDENTIALS_CALLERS

ROLE = "arn:aws:iam::123456789012:role/importer"
USER = "arn:aws:iam::123456789012:user/ops/importer-user"


@pytest.mark.parametrize("value", [None, "", " "])
def test_credentials_callers_unset_or_empty_is_no_list(value: str | None) -> None:
    assert Settings.from_environ(env(CREDENTIALS_CALLERS=value)).credentials_callers == ()


def test_credentials_callers_is_a_comma_separated_list_of_user_and_role_arns() -> None:
    settings = Settings.from_environ(env(CREDENTIALS_CALLERS=f"{ROLE}, {USER}"))
    assert settings.credentials_callers == (ROLE, USER)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("arn:aws:sts::123456789012:assumed-role/importer/session-1", "not a session"),
        ("arn:aws:iam::123456789012:role/*", "IAM user or role ARNs"),
        ("arn:aws:iam::123456789012:root", "IAM user or role ARNs"),
        ("arn:aws:iam::12345:role/importer", "IAM user or role ARNs"),
        (f"{ROLE},", "IAM user or role ARNs"),
        ("importer", "IAM user or role ARNs"),
    ],
)
def test_a_bad_credentials_callers_entry_stops_start_up_naming_the_variable(value: str, reason: str) -> None:
    message = config_error(CREDENTIALS_CALLERS=value)
    assert message.startswith("configuration error: CREDENTIALS_CALLERS ")
    assert reason in message


# ---- link confirmation


@pytest.mark.parametrize(("value", "confirms"), [("on", True), ("off", False)])
def test_link_confirmation_is_on_or_off(value: str, confirms: bool) -> None:
    settings = Settings.from_environ(env(LINK_CONFIRMATION=value, LINK_CONFIRMATION_SECONDS="300"))
    assert settings.confirms_links is confirms
    assert settings.link_confirmation_seconds == 300


@pytest.mark.parametrize("value", ["yes", "ON", "true", "1", ""])
def test_a_bad_link_confirmation_is_named(value: str) -> None:
    message = config_error(LINK_CONFIRMATION=value)
    assert message.startswith("configuration error: LINK_CONFIRMATION ")
    assert "'off' or 'on'" in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("301", "less than or equal to 300"),
        ("3600", "less than or equal to 300"),
        ("29", "greater than or equal to 30"),
        ("two minutes", "valid integer"),
    ],
)
def test_link_confirmation_seconds_beyond_its_bounds_is_refused(value: str, reason: str) -> None:
    message = config_error(LINK_CONFIRMATION="on", LINK_CONFIRMATION_SECONDS=value)
    assert message.startswith("configuration error: LINK_CONFIRMATION_SECONDS ")
    assert reason in message


@pytest.mark.parametrize(
    "value", ["token-url-audit", "arn:aws:events:eu-west-1:123456789012:event-bus/token-url-audit"]
)
def test_audit_event_bus_is_a_bus_name_or_its_arn(value: str) -> None:
    assert Settings.from_environ(env(AUDIT_EVENT_BUS=value)).audit_event_bus == value
