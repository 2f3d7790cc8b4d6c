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
from token_url.observability import count_by, logger
from token_url.ports import IdentityCloud

# The waits before each repeated read of an account that does not show the change yet.
RECHECK_WAITS = (0.5, 1.0, 2.0)
# The read timeout of each repeated account read, so that the time it is given before the deadline
# holds: the work after a found change (session, audit event, replay record) needs the margin left.
RECHECK_READ_SECONDS = 1.0


@dataclass(frozen=True)
class Change:
    """A link or an unlink whose reply was lost, as the recheck looks for it and reports it."""

    linked: bool  # what the account shows once the change is made: the identity linked, or not
    metric: str  # counted once per recheck, with the dimension `outcome`
    log_message: str
    # The `outcome` when the account shows the change, when it still does not, when /entity failed too.
    outcomes: tuple[str, str, str]


LINK = Change(
    linked=True,
    metric="LinksReconciled",
    log_message="Link outcome not heard from Capture; account read",
    outcomes=("linked", "not_linked", "unknown"),
)
UNLINK = Change(
    linked=False,
    metric="UnlinksReconciled",
    log_message="Unlink outcome not heard from Capture; account read",
    outcomes=("unlinked", "still_linked", "unknown"),
)


class AccountRecheck:
    def __init__(
        self, *, client: IdentityCloud, deadline: Deadline, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._deadline = deadline
        self._sleep = sleep

    def took_effect(self, change: Change, access_token: str, identifier: str, provider: str | None) -> bool:
        """Whether the account shows `change` of `identifier`, read as the waits and the deadline allow;
        counted and logged (without the identifier) either way."""
        shown, reads = self._shows(access_token, identifier, change.linked), 1
        for wait in RECHECK_WAITS:
            if shown is not False or not self._deadline.has_time_for(wait + RECHECK_READ_SECONDS):
                break
            self._sleep(wait)
            shown = self._shows(access_token, identifier, change.linked, read_timeout=RECHECK_READ_SECONDS)
            reads += 1
        made, not_made, unknown = change.outcomes
        outcome = unknown if shown is None else made if shown else not_made
        count_by(change.metric, outcome=outcome)
        logger.warning(
            change.log_message, extra={"provider": provider, "reconciled": outcome, "account_reads": reads}
        )
        return shown is True

    def _shows(
        self, access_token: str, identifier: str, linked: bool, *, read_timeout: float | None = None
    ) -> bool | None:
        try:
            account = self._client.read_account(access_token=access_token, read_timeout=read_timeout)
        except (ServiceUnavailable, CaptureError, ConfigurationProblem):
            return None
        return any(profile.identifier == identifier for profile in account.profiles) is linked
