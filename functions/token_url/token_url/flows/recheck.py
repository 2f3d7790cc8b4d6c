"""Whether a Capture link or unlink whose reply was lost took effect: the account read with /entity.

A call that may have reached Capture (a read timeout, a connection lost after sending, an HTTP 5xx
page) may have been carried out although the function heard nothing, so the flow reads the account
before it answers. Capture may still be carrying the call out when the client gives up, so a read
that does not show the change yet is repeated after a few waits, while the Lambda deadline leaves
time for one more read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from token_url.deadline import Deadline
from token_url.errors import CaptureError, ConfigurationProblem, ServiceUnavailable
from token_url.ports import IdentityCloud

# The waits before each repeated read of an account that does not show the change yet.
RECHECK_WAITS = (0.5, 1.0, 2.0)
# The read timeout of each repeated account read, so that the time it is given before the deadline
# holds: the work after a found change (session, audit event, replay record) needs the margin left.
RECHECK_READ_SECONDS = 1.0


@dataclass(frozen=True)
class Recheck:
    """What the account reads found: `shown` True when the account shows the change, False when the
    last read still did not, None when /entity failed too; and how many reads it took."""

    shown: bool | None
    reads: int


class AccountRecheck:
    def __init__(
        self, *, client: IdentityCloud, deadline: Deadline, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._deadline = deadline
        self._sleep = sleep

    def shows(self, access_token: str, identifier: str, *, linked: bool) -> Recheck:
        """Read the account until it shows `identifier` linked (or, `linked=False`, not linked), as the
        waits and the deadline allow."""
        shown, reads = self._shows(access_token, identifier, linked), 1
        for wait in RECHECK_WAITS:
            if shown is not False or not self._deadline.has_time_for(wait + RECHECK_READ_SECONDS):
                break
            self._sleep(wait)
            shown = self._shows(access_token, identifier, linked, read_timeout=RECHECK_READ_SECONDS)
            reads += 1
        return Recheck(shown=shown, reads=reads)

    def _shows(
        self, access_token: str, identifier: str, linked: bool, *, read_timeout: float | None = None
    ) -> bool | None:
        try:
            account = self._client.read_account(access_token=access_token, read_timeout=read_timeout)
        except (ServiceUnavailable, CaptureError, ConfigurationProblem):
            return None
        return any(profile.identifier == identifier for profile in account.profiles) is linked
