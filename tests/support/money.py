"""The money invariants, checked by every test that moves money."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from handler.stores.jobs import JobStore
from handler.stores.wallets import LedgerEntry, WalletStore

RESERVATIONS = ("charge", "usage")


def assert_money_invariants(
    wallets: WalletStore,
    wallet_id: str,
    *,
    jobs: JobStore | None = None,
    failed_units: Iterable[str] = (),
) -> None:
    """Balance >= 0; the ledger sums to the balance; no reservation left open; a refund for
    every refunded charge and no other; one reservation per unit of work; no failed unit
    charged.

    ``failed_units`` names units the test saw fail (``request:<id>``, ``idempotency:<id>``,
    ``job:<id>``). With ``jobs``, every job unit in the ledger is checked against its job:
    completed <=> settled, failed <=> refunded.
    """
    balance = wallets.get(wallet_id).balance
    entries = wallets.all_entries(wallet_id)
    assert balance >= 0, f"negative balance {balance}"
    assert sum(e.amount for e in entries) == balance, "ledger does not sum to the balance"
    refunds = {e.refers_to: e for e in entries if e.kind == "refund"}
    for entry in entries:
        if entry.kind in RESERVATIONS:
            assert entry.status in ("settled", "refunded"), f"open reservation {entry.entry_id}"
        if entry.kind == "charge" and entry.status == "refunded":
            refund = refunds.get(entry.entry_id)
            assert refund is not None and refund.amount == -entry.amount, "refund missing"
        if entry.kind == "charge" and entry.status == "settled":
            assert entry.entry_id not in refunds, "charged and refunded"
    assert len(refunds) == sum(1 for e in entries if e.kind == "refund"), "double refund"

    reservations = [e for e in entries if e.kind in RESERVATIONS]
    assert all(e.unit for e in reservations), "a reservation without its unit of work"
    per_unit = Counter(e.unit for e in reservations)
    repeated = {unit: n for unit, n in per_unit.items() if n > 1}
    assert not repeated, f"more than one reservation for a unit: {repeated}"
    by_unit = {e.unit or "": e for e in reservations}  # every one has a unit (asserted above)
    for unit in failed_units:
        failed = by_unit.get(unit)
        assert failed is None or failed.status == "refunded", f"failed unit {unit} was charged"
    if jobs is not None:
        for unit, entry in by_unit.items():
            kind, _, job_id = (unit or "").partition(":")
            if kind != "job":
                continue
            job = jobs.get(job_id)
            assert job is not None, f"charge for an unknown job {job_id}"
            expected = {"completed": "settled", "failed": "refunded"}.get(job.status)
            assert entry.status == expected, f"job {job.status} but its charge {entry.status}"


def charges(wallets: WalletStore, wallet_id: str) -> list[LedgerEntry]:
    """The wallet's reservations (charges and unmetered usage), oldest first."""
    return [e for e in wallets.all_entries(wallet_id) if e.kind in RESERVATIONS]


def settled_total(wallets: WalletStore, wallet_id: str) -> int:
    """Micro-USD charged for good."""
    return -sum(e.amount for e in charges(wallets, wallet_id) if e.status == "settled")
