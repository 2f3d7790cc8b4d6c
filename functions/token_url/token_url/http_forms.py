"""Parsing of the token POST: the form Social Login submits to the token URL.

Written with the standard library rather than Powertools' Form parameters: this route must answer
every malformed body with a redirect (never a 422 or a 500), and reject duplicated fields, which
Powertools' parsers merge or pass through.
"""

from __future__ import annotations

import base64
import binascii
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qs

from token_url.models import TokenCallback

MAX_FORM_BYTES = 8 * 1024
MAX_FIELDS = 20


class InvalidForm(ValueError):
    """The body is not a well-formed form of the accepted kinds."""


def decode_body(body: str | None, *, is_base64: bool) -> bytes:
    if not body:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidForm("body is not valid base64") from None
    return body.encode("utf-8", errors="surrogatepass")


def parse_form(content_type: str, body: bytes) -> dict[str, list[str]]:
    """Fields of an urlencoded or multipart body, each with all its values."""
    if len(body) > MAX_FORM_BYTES:
        raise InvalidForm("body too large")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        return _parse_urlencoded(body)
    if media_type == "multipart/form-data":
        return _parse_multipart(content_type, body)
    raise InvalidForm("unsupported content type")


def _parse_urlencoded(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # UnicodeDecodeError, too many fields
        raise InvalidForm("malformed urlencoded body") from None


def _parse_multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    # Imported here: Social Login posts urlencoded forms, and email.policy (with the header registry it
    # loads) would add about 2 ms to every cold start for a kind of body that seldom comes. The SnapStart
    # warm-up parses one (snapstart.py), so a restored container has it loaded.
    from email import policy  # noqa: PLC0415

    try:
        header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    except (UnicodeEncodeError, ValueError, TypeError):
        raise InvalidForm("malformed multipart body") from None
    if not isinstance(message, EmailMessage) or not message.is_multipart() or message.defects:
        raise InvalidForm("malformed multipart body")
    fields: dict[str, list[str]] = {}
    for index, part in enumerate(message.iter_parts()):
        if index >= MAX_FIELDS:
            raise InvalidForm("too many fields")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            raise InvalidForm("multipart part without a field name, or a file")
        payload = part.get_payload(decode=True)
        try:
            value = payload.decode("utf-8") if isinstance(payload, bytes) else ""
        except UnicodeDecodeError:
            raise InvalidForm("field is not UTF-8") from None
        fields.setdefault(name, []).append(value)
    return fields


def single_value(fields: dict[str, list[str]], name: str) -> str | None:
    """The one value of a field; a duplicated field is malformed, not a choice between values."""
    values = fields.get(name, [])
    if len(values) > 1:
        raise InvalidForm(f"field {name} given more than once")
    return values[0] if values else None


def read_token_callback(
    *, content_type: str, body: str | None, is_base64: bool, raw_query: str | None
) -> TokenCallback | None:
    """The token POST's token (from the form) and one-time value (from the token URL's query), or None
    when the request is malformed. A missing or repeated `nonce` is left as None, for the flow to refuse."""
    try:
        token = single_value(parse_form(content_type, decode_body(body, is_base64=is_base64)), "token")
        nonces = parse_qs(raw_query or "", keep_blank_values=True, max_num_fields=MAX_FIELDS).get("nonce", [])
        if token is None:
            raise InvalidForm("no token")
        return TokenCallback.model_validate(
            {"token": token, "nonce": nonces[0] if len(nonces) == 1 else None}, strict=False
        )
    except (InvalidForm, ValueError):
        return None
