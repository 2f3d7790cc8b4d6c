"""The journal beside the input: what each row came to, so that a run started again sends no row twice.

One JSON line per row that Social Login answered for good (stored, or refused), appended and flushed
as it happens, so a run stopped any way (Ctrl-C, a crash, a lost network) has recorded every answer
it received. The first line holds the input's SHA-256: a journal is never applied to another file.
A lock keeps two runs off the same file. Tokens are never written; identifiers are (profile URLs).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import time
from dataclasses import asdict, dataclass
from typing import IO, Any

JOURNAL_VERSION = 1
FSYNC_EVERY = 50
"""Answers are flushed at once (they survive the process); synced to disk every this many (and at close)."""


class JournalError(Exception):
    """The journal cannot be used as it is; the message says why and what to do."""


class JournalMismatch(JournalError):
    """The journal beside the file was written for different contents."""


@dataclass(frozen=True)
class Entry:
    row: int
    identifier: str
    outcome: str
    """`stored` or `rejected`: a row with an entry is never sent again."""
    reason: str | None = None


def journal_path(input_path: pathlib.Path) -> pathlib.Path:
    return input_path.with_name(input_path.name + ".journal")


def file_sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Journal:
    def __init__(self, path: pathlib.Path, stream: IO[str], entries: dict[int, Entry]) -> None:
        self.path = path
        self.entries = entries
        self._stream = stream
        self._unsynced = 0

    @classmethod
    def open(cls, input_path: pathlib.Path) -> Journal:
        """The journal of `input_path`, locked, with the entries of earlier runs (none if it is new)."""
        path = journal_path(input_path)
        input_sha256 = file_sha256(input_path)
        stream = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.close()
            raise JournalError(f"{path} is locked: another import of this file is running") from None
        try:
            entries = _read(stream, path, input_sha256)
        except JournalError:
            stream.close()
            raise
        return cls(path, stream, entries)

    def record(self, entry: Entry) -> None:
        self._stream.write(json.dumps(asdict(entry)) + "\n")
        self._stream.flush()
        self.entries[entry.row] = entry
        self._unsynced += 1
        if self._unsynced >= FSYNC_EVERY:
            self._sync()

    def close(self) -> None:
        if not self._stream.closed:
            with contextlib.suppress(OSError):
                self._sync()
            self._stream.close()  # also releases the lock

    def _sync(self) -> None:
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._unsynced = 0


def _read(stream: IO[str], path: pathlib.Path, input_sha256: str) -> dict[int, Entry]:
    """Entries of an existing journal; a new (or empty) one gets its header."""
    stream.seek(0)
    text = stream.read()
    complete, _, torn = text.rpartition("\n")
    if torn:
        # The last line was cut short by a crash: drop it (its row is sent again) so that the next
        # entry starts on a line of its own.
        stream.truncate(len(complete) + 1 if complete else 0)
    lines = complete.split("\n") if complete else []
    if not lines:
        header = {"journal": JOURNAL_VERSION, "input_sha256": input_sha256, "created": time.time()}
        stream.write(json.dumps(header) + "\n")
        stream.flush()
        return {}
    if _parse(lines[0], path, 1).get("input_sha256") != input_sha256:
        raise JournalMismatch(
            f"{path} was written for other contents of the input; pass --restart (or remove it) to import "
            "this file from its first row"
        )
    entries: dict[int, Entry] = {}
    for number, line in enumerate(lines[1:], start=2):
        data = _parse(line, path, number)
        try:
            entry = Entry(
                row=int(data["row"]),
                identifier=str(data["identifier"]),
                outcome=str(data["outcome"]),
                reason=data.get("reason"),
            )
        except (KeyError, TypeError, ValueError):
            raise JournalError(f"{path}, line {number}: not a journal entry") from None
        entries[entry.row] = entry
    return entries


def _parse(line: str, path: pathlib.Path, number: int) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise JournalError(f"{path}, line {number}: not a journal line; was the file edited?")
    return data
