"""Refund reservations that were never settled.

A request reserves its cost, transcribes, then settles. If DynamoDB fails between the
reservation and the settlement (or the process dies there), the client got an error and no
transcript, so the reservation must go back. Requests finish within minutes (jobs within the
15-minute Lambda limit); anything still reserved well after that is refunded here. Run it
from the schedule in ``template.yaml`` or with ``tinyscribe wallets reconcile``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from handler.observability import logger
from handler.services import Services
from handler.stores.wallets import ReservationClosed

# Longer than any request can run (Lambda's 15-minute limit), with margin.
DEFAULT_GRACE_SECONDS = 30 * 60


def reconcile(services: Services, grace_seconds: int = DEFAULT_GRACE_SECONDS) -> dict[str, Any]:
    """Refund every reservation older than ``grace_seconds``; returns what was refunded."""
    cutoff = (datetime.now(UTC) - timedelta(seconds=grace_seconds)).isoformat(
        timespec="milliseconds"
    )
    refunded = []
    for wallet_id in services.wallets.wallet_ids():
        for reservation in services.wallets.stale_reservations(wallet_id, older_than=cutoff):
            try:
                services.wallets.refund(reservation)
            except ReservationClosed:
                continue  # settled or refunded meanwhile
            refunded.append(
                {
                    "wallet_id": wallet_id,
                    "entry_id": reservation.entry_id,
                    "amount": reservation.amount,
                }
            )
    logger.info("reconciled", extra={"refunded": len(refunded), "cutoff": cutoff})
    return {"refunded": refunded}
