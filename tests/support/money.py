"""The money invariants, checked by every test that moves money."""

from __future__ import annotations

from handler.stores.wallets import WalletStore


def assert_money_invariants(wallets: WalletStore, wallet_id: str) -> None:
    """Balance >= 0; the ledger sums to the balance; no request both charged and failed;
    no reservation left open."""
    balance = wallets.get(wallet_id).balance
    entries = wallets.all_entries(wallet_id)
    assert balance >= 0, f"negative balance {balance}"
    assert sum(e.amount for e in entries) == balance, "ledger does not sum to the balance"
    refunds = {e.refers_to: e for e in entries if e.kind == "refund"}
    for entry in entries:
        if entry.kind in ("charge", "usage"):
            assert entry.status in ("settled", "refunded"), f"open reservation {entry.entry_id}"
        if entry.kind == "charge" and entry.status == "refunded":
            refund = refunds.get(entry.entry_id)
            assert refund is not None and refund.amount == -entry.amount, "refund missing"
        if entry.kind == "charge" and entry.status == "settled":
            assert entry.entry_id not in refunds, "charged and refunded"
    assert len(refunds) == sum(1 for e in entries if e.kind == "refund"), "double refund"
