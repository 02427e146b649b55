"""Close reservations that their unit of work left open, so a unit and its charge agree.

A reservation stays open when its unit could not finish: DynamoDB failing between the
reservation and the settlement, a process that died, or a job whose every Lambda retry
failed. Units end within minutes (requests within 30 s, a job attempt within Lambda's
15 minutes, its retries a few minutes apart), so anything still open after the grace period
is repaired here, by what its unit says:

- a job that ``completed`` (its result delivered) -> settle the charge;
- a job still ``processing`` -> refund, and fail the job (server_error: its retries ran
  out) in the same transaction; a job that ``failed`` -> refund;
- a request under an Idempotency-Key whose response was stored -> settle; one still in
  progress -> refund and release the key in one transaction, so the client's retry runs
  (as a new unit);
- any other request (its client got an error, not a transcript) -> refund.

Open reservations are read from the ledger's sparse ``open-reservations`` index (only
entries still ``reserved`` are in it), so a run reads the open reservations and their units,
never the ledgers: its cost does not grow with the history billed. Run it from the schedule
in ``template.yaml`` or with ``tinyscribe wallets reconcile``.
"""

from __future__ import annotations

from typing import Any

from handler.clock import iso_time
from handler.errors import ServerError
from handler.observability import logger
from handler.services import Services
from handler.stores.wallets import Reservation, ReservationClosed

# Longer than any unit runs (Lambda's 15-minute limit, plus the retries' delays), with margin.
DEFAULT_GRACE_SECONDS = 30 * 60
JOB_GAVE_UP = (
    "The job failed on the server after several attempts. Nothing was charged; create a new "
    "job to retry."
)


def reconcile(services: Services, grace_seconds: int = DEFAULT_GRACE_SECONDS) -> dict[str, Any]:
    """Repair every reservation open for longer than ``grace_seconds`` (by the services'
    clock); returns what was refunded and what was settled."""
    cutoff = iso_time(services.clock() - grace_seconds)
    done: dict[str, list[dict[str, Any]]] = {"refunded": [], "settled": []}
    for reservation in services.wallets.open_reservations(older_than=cutoff):
        try:
            outcome = _repair(services, reservation)
        except ReservationClosed:
            continue  # its unit finished it meanwhile
        done[outcome].append(
            {
                "wallet_id": reservation.wallet_id,
                "entry_id": reservation.entry_id,
                "unit": reservation.unit,
                "amount": reservation.amount,
            }
        )
    logger.info(
        "reconciled",
        extra={
            "refunded": len(done["refunded"]),
            "settled": len(done["settled"]),
            "cutoff": cutoff,
        },
    )
    return done


def _repair(services: Services, reservation: Reservation) -> str:
    kind, _, name = (reservation.unit or "").partition(":")
    if kind == "job":
        job = services.jobs.get(name)
        if job is not None and job.status == "completed":
            services.wallets.settle(reservation)
            return "settled"
        if job is not None and job.status == "processing":
            error = ServerError(JOB_GAVE_UP).envelope()["error"]
            services.wallets.refund(reservation, services.jobs.fail_item(job, error))
            return "refunded"
    elif kind == "idempotency":
        record_id, _, incarnation = name.rpartition(":")
        record = services.idempotency.get(record_id)
        if record is not None and record.incarnation == incarnation:
            if record.status == "completed":
                services.wallets.settle(reservation)
                return "settled"
            services.wallets.refund(reservation, services.idempotency.release_item(record))
            return "refunded"
    services.wallets.refund(reservation)
    return "refunded"
