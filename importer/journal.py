"""The journal beside the input: what each row came to, so that a run started again sends no row twice.

One JSON line per row that reached an end (stored, or refused by Social Login), appended and flushed
as it happens, so a run stopped any way (Ctrl-C, a crash, a lost network) has recorded every answer
it received. The first line holds the input's SHA-256: a journal is never applied to another file.
Tokens are not written; identifiers are (they are profile URLs, not secrets).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import time
from dataclasses import dataclass
from typing import IO, Any

JOURNAL_VERSION = 1
FSYNC_EVERY = 50
"""Answers are flushed at once (they survive the process); synced to disk every this many (and at close)."""


class JournalMismatch(Exception):
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
    def __init__(self, path: pathlib.Path, input_sha256: str) -> None:
        self.path = path
        self._input_sha256 = input_sha256
        self.entries: dict[int, Entry] = {}
        self._stream: IO[str] | None = None
        self._unsynced = 0

    @classmethod
    def open(cls, input_path: pathlib.Path) -> Journal:
        """The journal of `input_path`, with the entries of earlier runs (none if it is new)."""
        journal = cls(journal_path(input_path), file_sha256(input_path))
        if journal.path.exists():
            journal._load()
        return journal

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        if header.get("input_sha256") != self._input_sha256:
            raise JournalMismatch(
                f"{self.path} was written for other contents of the input; remove it (or pass --restart) "
                "to import this file from its first row"
            )
        for line in lines[1:]:
            try:
                data: dict[str, Any] = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: its row is simply sent again
            entry = Entry(
                row=data["row"],
                identifier=data["identifier"],
                outcome=data["outcome"],
                reason=data.get("reason"),
            )
            self.entries[entry.row] = entry

    def record(self, entry: Entry) -> None:
        stream = self._writer()
        stream.write(json.dumps(entry.__dict__) + "\n")
        stream.flush()
        self.entries[entry.row] = entry
        self._unsynced += 1
        if self._unsynced >= FSYNC_EVERY:
            self._sync()

    def close(self) -> None:
        if self._stream is not None:
            self._sync()
            self._stream.close()
            self._stream = None

    def _writer(self) -> IO[str]:
        if self._stream is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._stream = self.path.open("a", encoding="utf-8")
            if new:
                header = {
                    "journal": JOURNAL_VERSION,
                    "input_sha256": self._input_sha256,
                    "created": time.time(),
                }
                self._stream.write(json.dumps(header) + "\n")
        return self._stream

    def _sync(self) -> None:
        assert self._stream is not None
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._unsynced = 0
