"""The input file: CSV with the header `identifier,token`, or JSON Lines; every row checked before sending."""

from __future__ import annotations

import csv
import json
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

from pydantic import ValidationError

from token_url.models import SUPPORTED_CREDENTIAL_PROVIDERS, CredentialsRequest

MIN_TOKEN_LENGTH = 8
CSV_FIELDS = ("identifier", "token")
JSON_LINES_SUFFIXES = {".jsonl", ".ndjson"}


class InputError(Exception):
    """The file as a whole cannot be read (missing, unknown format, no `identifier,token` header)."""


@dataclass(frozen=True)
class Row:
    number: int
    """1-based position among the data rows (the CSV header and blank JSON lines are not rows)."""
    identifier: str
    token: str


@dataclass(frozen=True)
class Rejection:
    number: int
    identifier: str | None
    reason: str


REASONS = {
    "malformed_row": "not a row of two text fields identifier and token",
    "identifier_missing": "no identifier",
    "identifier_unsupported": "not the profile URL of a supported provider ("
    + ", ".join(SUPPORTED_CREDENTIAL_PROVIDERS.values())
    + ")",
    "token_missing": "no token",
    "token_implausible": f"not a token: printable ASCII, no spaces, {MIN_TOKEN_LENGTH} to 4096 characters",
    "duplicate_identifier": "the identifier is in an earlier row of the file, which is the one sent",
}


def read(path: pathlib.Path) -> list[Row | Rejection]:
    """Every row of the file, checked; rows that cannot be sent are Rejections with their reason."""
    raw = list(_json_lines(path) if _is_json_lines(path) else _csv_rows(path))
    seen: set[str] = set()
    checked: list[Row | Rejection] = []
    for number, fields in enumerate(raw, start=1):
        row = check(number, fields)
        if isinstance(row, Row):
            if row.identifier in seen:
                row = Rejection(number, row.identifier, "duplicate_identifier")
            else:
                seen.add(row.identifier)
        checked.append(row)
    return checked


def check(number: int, fields: dict[str, object] | None) -> Row | Rejection:
    """The checks of POST /credentials (CredentialsRequest), plus a minimum token length.

    The route passes any printable token to Social Login, which decides; in a bulk file, very short
    values are placeholders or cut-off cells ("-", "null", "N/A"), so they are refused here.
    A rejected identifier is reported only if it looks like a URL: a token pasted into the wrong
    column must not land in the report.
    """
    if fields is None or not all(isinstance(fields.get(name), str | None) for name in CSV_FIELDS):
        return Rejection(number, None, "malformed_row")
    identifier = str(fields.get("identifier") or "").strip()
    token = str(fields.get("token") or "").strip()
    if not identifier:
        return Rejection(number, None, "identifier_missing")
    shown = identifier if _looks_like_url(identifier) else None
    if not token:
        return Rejection(number, shown, "token_missing")
    try:
        CredentialsRequest.model_validate({"identifier": identifier, "token": token})
    except ValidationError as error:
        field = str(error.errors()[0]["loc"][0])
        return Rejection(
            number, shown, "identifier_unsupported" if field == "identifier" else "token_implausible"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        return Rejection(number, shown, "token_implausible")
    return Row(number, identifier, token)


def _looks_like_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and " " not in value


def _is_json_lines(path: pathlib.Path) -> bool:
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return True
    if path.suffix.lower() == ".csv":
        return False
    with _open(path) as stream:
        first = stream.read(1)
    return first == "{"


def _open(path: pathlib.Path) -> TextIO:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None


def _csv_rows(path: pathlib.Path) -> Iterator[dict[str, object] | None]:
    with _open(path) as stream:
        reader = csv.DictReader(stream)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if not set(CSV_FIELDS) <= set(header):
            raise InputError(f"{path}: the first line must be the header identifier,token")
        reader.fieldnames = header
        try:
            for record in reader:
                # A row with too many fields puts the rest under None; too few leaves None values.
                yield None if None in record else dict(record)
        except (csv.Error, UnicodeDecodeError) as error:
            raise InputError(f"{path}: not readable as CSV near line {reader.line_num}: {error}") from None


def _json_lines(path: pathlib.Path) -> Iterator[dict[str, object] | None]:
    with _open(path) as stream:
        try:
            for line in stream:
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError:
                    yield None
                    continue
                yield value if isinstance(value, dict) else None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
