"""Parsing of the token POST body: every malformed body is InvalidForm, never another exception."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from token_url.http_forms import (
    MAX_FIELDS,
    MAX_FORM_BYTES,
    InvalidForm,
    decode_body,
    parse_form,
    single_value,
)

URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "----TokenUrlBoundary7MA4YWxk"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def multipart(*parts: tuple[str, bytes], boundary: str = BOUNDARY, filename: str | None = None) -> bytes:
    chunks = []
    for name, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
        )
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


# ---------------------------------------------------------------- decode_body


def test_plain_body_is_encoded_as_utf8() -> None:
    assert decode_body(f"token={TOKEN}&x=%C3%A9é", is_base64=False) == f"token={TOKEN}&x=%C3%A9é".encode()


def test_base64_body_is_decoded() -> None:
    raw = multipart(("token", TOKEN.encode()))
    assert decode_body(base64.b64encode(raw).decode(), is_base64=True) == raw


@pytest.mark.parametrize("is_base64", [True, False])
@pytest.mark.parametrize("body", [None, ""])
def test_missing_body_is_empty(body: str | None, is_base64: bool) -> None:
    assert decode_body(body, is_base64=is_base64) == b""


@pytest.mark.parametrize("body", ["not base64!", "dG9rZW4=garbage", "dG9rZW49YWJj\n", "é", "abc"])
def test_invalid_base64_is_invalid_form(body: str) -> None:
    with pytest.raises(InvalidForm, match="not valid base64"):
        decode_body(body, is_base64=True)


# ---------------------------------------------------------------- urlencoded


def test_urlencoded_fields_with_all_values() -> None:
    body = f"token={TOKEN}&empty=&name=%C3%A9t%C3%A9+x&name=b".encode()

    assert parse_form(URLENCODED, body) == {"token": [TOKEN], "empty": [""], "name": ["été x", "b"]}


@pytest.mark.parametrize(
    "content_type",
    [URLENCODED, "application/x-www-form-urlencoded; charset=UTF-8", " Application/X-WWW-Form-Urlencoded "],
)
def test_urlencoded_media_type_is_matched_without_parameters_and_case(content_type: str) -> None:
    assert parse_form(content_type, b"token=abc") == {"token": ["abc"]}


def test_urlencoded_body_that_is_not_utf8_is_invalid() -> None:
    with pytest.raises(InvalidForm, match="malformed urlencoded body"):
        parse_form(URLENCODED, b"token=\xff\xfe")


def test_urlencoded_field_limit() -> None:
    at_limit = "&".join(f"f{i}=v" for i in range(MAX_FIELDS)).encode()
    assert len(parse_form(URLENCODED, at_limit)) == MAX_FIELDS

    with pytest.raises(InvalidForm):
        parse_form(URLENCODED, at_limit + b"&extra=v")


def test_empty_urlencoded_body_has_no_fields() -> None:
    assert parse_form(URLENCODED, b"") == {}


# ---------------------------------------------------------------- multipart


def test_multipart_fields_with_all_values() -> None:
    body = multipart(("token", TOKEN.encode()), ("name", "été".encode()), ("name", b""))

    assert parse_form(MULTIPART, body) == {"token": [TOKEN], "name": ["été", ""]}


def test_multipart_with_quoted_boundary() -> None:
    body = multipart(("token", b"abc"))

    assert parse_form(f'multipart/form-data; boundary="{BOUNDARY}"', body) == {"token": ["abc"]}


def test_multipart_part_with_a_filename_is_rejected() -> None:
    body = multipart(("token", b"abc"), filename="token.txt")

    with pytest.raises(InvalidForm, match="file"):
        parse_form(MULTIPART, body)


def test_multipart_part_without_a_name_is_rejected() -> None:
    body = f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode()

    with pytest.raises(InvalidForm, match="without a field name"):
        parse_form(MULTIPART, body)


def test_multipart_field_that_is_not_utf8_is_rejected() -> None:
    with pytest.raises(InvalidForm, match="not UTF-8"):
        parse_form(MULTIPART, multipart(("token", b"\xff\xfe")))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", multipart(("token", b"abc"))),  # no boundary parameter
        (MULTIPART, b"garbage without any boundary"),
        (MULTIPART, b""),
        (MULTIPART, multipart(("token", b"abc"))[: -len(f"--{BOUNDARY}--\r\n")]),  # never closed
        ("multipart/form-data; boundary=OtherBoundary", multipart(("token", b"abc"))),
        ("multipart/form-data; boundary=\u20ac", multipart(("token", b"abc"))),  # not latin-1
    ],
)
def test_malformed_multipart_is_invalid(content_type: str, body: bytes) -> None:
    with pytest.raises(InvalidForm, match="malformed multipart body"):
        parse_form(content_type, body)


def test_multipart_field_limit() -> None:
    fields = [(f"f{i}", b"v") for i in range(MAX_FIELDS)]
    assert len(parse_form(MULTIPART, multipart(*fields))) == MAX_FIELDS

    with pytest.raises(InvalidForm, match="too many fields"):
        parse_form(MULTIPART, multipart(*fields, ("extra", b"v")))


# ---------------------------------------------------------------- size and type


@pytest.mark.parametrize("content_type", [URLENCODED, MULTIPART, "text/plain"])
def test_oversized_body_is_refused_before_parsing(content_type: str) -> None:
    at_limit = b"a=" + b"x" * (MAX_FORM_BYTES - 2)
    assert parse_form(URLENCODED, at_limit) == {"a": ["x" * (MAX_FORM_BYTES - 2)]}

    with pytest.raises(InvalidForm, match="body too large"):
        parse_form(content_type, at_limit + b"x")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "",
        "multipart/mixed; boundary=x",
        "application/x-www-form-urlencodedx",
    ],
)
def test_unsupported_content_type(content_type: str) -> None:
    with pytest.raises(InvalidForm, match="unsupported content type"):
        parse_form(content_type, b"token=abc")


# ---------------------------------------------------------------- single_value


def test_single_value_of_present_and_absent_fields() -> None:
    fields = {"token": [TOKEN], "empty": [""]}

    assert single_value(fields, "token") == TOKEN
    assert single_value(fields, "empty") == ""
    assert single_value(fields, "nonce") is None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (URLENCODED, b"token=first&token=second"),
        (MULTIPART, multipart(("token", b"first"), ("token", b"second"))),
        (URLENCODED, b"token=same&token=same"),
    ],
)
def test_duplicated_token_field_is_invalid(content_type: str, body: bytes) -> None:
    fields = parse_form(content_type, body)

    with pytest.raises(InvalidForm, match="token given more than once"):
        single_value(fields, "token")


# ---------------------------------------------------------------- never another exception

_CONTENT_TYPES = st.one_of(
    st.text(max_size=60),
    st.sampled_from([URLENCODED, MULTIPART, "multipart/form-data"]),
    st.text(max_size=20).map(lambda boundary: f"multipart/form-data; boundary={boundary}"),
)
_BODIES = st.one_of(
    st.binary(max_size=400),
    st.tuples(st.binary(max_size=80), st.binary(max_size=40)).map(
        lambda pair: (
            f"--{BOUNDARY}\r\n".encode()
            + pair[0]
            + b"\r\n\r\n"
            + pair[1]
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
    ),
    st.text(max_size=60).map(
        lambda header: f"--{BOUNDARY}\r\nContent-Disposition: {header}\r\n\r\nv\r\n--{BOUNDARY}--\r\n".encode(
            "utf-8", "surrogatepass"
        )
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=_CONTENT_TYPES, body=_BODIES)
def test_any_body_gives_fields_or_invalid_form(content_type: str, body: bytes) -> None:
    try:
        fields = parse_form(content_type, body)
    except InvalidForm:
        return
    assert isinstance(fields, dict)
    assert all(isinstance(name, str) for name in fields)
    assert all(isinstance(value, str) for values in fields.values() for value in values)


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=200))
def test_any_base64_body_gives_bytes_or_invalid_form(body: str) -> None:
    try:
        decoded = decode_body(body, is_base64=True)
    except InvalidForm:
        return
    assert isinstance(decoded, bytes)
    assert len(decoded) == len(body) // 4 * 3 - body.count("=")
