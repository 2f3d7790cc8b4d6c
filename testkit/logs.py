"""Every line a logger writes, formatted exactly as Powertools writes it to CloudWatch."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

SERVICE_LOGGER = "token-url"
"""The function's Powertools logger (its service name)."""


class LogLines(logging.Handler):
    """Keeps every record as a formatted line in `lines` (a list of the caller's, or its own)."""

    def __init__(self, formatter: logging.Formatter | None = None, lines: list[str] | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = [] if lines is None else lines
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def powertools_formatter(logger_name: str = SERVICE_LOGGER) -> logging.Formatter | None:
    """The formatter of the handler Powertools installed on the logger, if it has one yet."""
    handler = next(iter(logging.getLogger(logger_name).handlers), None)
    return handler.formatter if handler else None


@contextmanager
def function_log_lines(lines: list[str] | None = None) -> Iterator[LogLines]:
    """The function's log lines while the block runs, as CloudWatch would receive them."""
    logger = logging.getLogger(SERVICE_LOGGER)
    capture = LogLines(powertools_formatter(), lines)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
