"""Prepaid wallets and their ledger.

Every change of a balance is one DynamoDB transaction that also writes the ledger entry
explaining it, so the ledger of a wallet always sums to its balance. A transcription
*reserves* its cost up front (a conditional write: the balance must cover it), then
*settles* (marks the reservation final) or is *refunded* (gives it back).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

from handler.errors import InsufficientCredits
from handler.stores.dynamo import client, plain_item, unavailable, unavailable_on_outage
from handler.stores.keys import now_iso

EntryKind = Literal["grant", "top_up", "charge", "refund", "usage"]
CURRENCY = "usd"


class WalletNotFound(LookupError):
    """No wallet with this id."""


@dataclass(frozen=True)
class Wallet:
    wallet_id: str
    balance: int
    """Micro-USD."""
    currency: str
    created_at: str


@dataclass(frozen=True)
class LedgerEntry:
    """One line of a wallet's history; ``amount`` is the signed change of balance."""

    wallet_id: str
    entry_id: str
    kind: EntryKind
    amount: int
    created_at: str
    status: str | None = None
    """For charges and usage: reserved, settled or refunded."""
    key_id: str | None = None
    request_id: str | None = None
    audio_seconds: int | None = None
    list_price: int | None = None
    """What the audio would cost at the list price (recorded for unmetered usage too)."""
    paid: int | None = None
    fee: int | None = None
    refers_to: str | None = None


@dataclass(frozen=True)
class Reservation:
    """A charge held against a wallet while its request runs."""

    wallet_id: str
    entry_id: str
    amount: int
    metered: bool


def new_wallet_id() -> str:
    return f"wal_{secrets.token_hex(8)}"


def _entry_id(created_at: str) -> str:
    # Sorts by time; the random tail keeps simultaneous entries distinct.
    return f"{created_at}#{secrets.token_hex(4)}"


class WalletStore:
    """The wallets and ledger tables."""

    def __init__(self, wallets_table: str, ledger_table: str, dynamodb: Any | None = None) -> None:
        self.wallets_table = wallets_table
        self.ledger_table = ledger_table
        self.client = dynamodb or client()

    # -- operator side ---------------------------------------------------------------
    def create(self, *, wallet_id: str | None = None, grant: int = 0) -> Wallet:
        """A new wallet, optionally starting with ``grant`` micro-USD of free credit."""
        created_at = now_iso()
        wallet = Wallet(wallet_id or new_wallet_id(), grant, CURRENCY, created_at)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.wallets_table,
                    "Item": asdict(wallet),
                    "ConditionExpression": "attribute_not_exists(wallet_id)",
                }
            }
        ]
        if grant:
            entry = LedgerEntry(wallet.wallet_id, _entry_id(created_at), "grant", grant, created_at)
            items.append(self._put_entry(entry))
        with unavailable_on_outage():
            self.client.transact_write_items(TransactItems=items)
        return wallet

    def top_up(self, wallet_id: str, *, paid: int, fee: int) -> LedgerEntry:
        """Credit ``paid - fee`` to the wallet, recording paid, fee and credit."""
        created_at = now_iso()
        credit = paid - fee
        entry = LedgerEntry(
            wallet_id, _entry_id(created_at), "top_up", credit, created_at, paid=paid, fee=fee
        )
        self._transact_balance_change(entry)
        return entry

    def get(self, wallet_id: str) -> Wallet:
        """The wallet, read consistently."""
        with unavailable_on_outage():
            item = (
                client()
                .get_item(
                    TableName=self.wallets_table, Key={"wallet_id": wallet_id}, ConsistentRead=True
                )
                .get("Item")
            )
        if not item:
            raise WalletNotFound(wallet_id)
        return _wallet(item)

    def ledger(
        self, wallet_id: str, *, limit: int = 100, after: str | None = None
    ) -> tuple[list[LedgerEntry], bool]:
        """Entries newest first, ``limit`` at a time after entry ``after``; and if more exist."""
        kwargs: dict[str, Any] = {
            "TableName": self.ledger_table,
            "KeyConditionExpression": "wallet_id = :w",
            "ExpressionAttributeValues": {":w": wallet_id},
            "ScanIndexForward": False,
            "Limit": limit,
            "ConsistentRead": True,
        }
        if after:
            kwargs["ExclusiveStartKey"] = {"wallet_id": wallet_id, "entry_id": after}
        with unavailable_on_outage():
            page = self.client.query(**kwargs)
        entries = [_entry(item) for item in page.get("Items", [])]
        return entries, "LastEvaluatedKey" in page

    def all_entries(self, wallet_id: str) -> list[LedgerEntry]:
        """The whole ledger of a wallet, oldest first (for audits and reconciliation)."""
        entries: list[LedgerEntry] = []
        after: str | None = None
        while True:
            page, more = self.ledger(wallet_id, limit=500, after=after)
            entries.extend(page)
            if not more or not page:
                return entries[::-1]
            after = page[-1].entry_id

    # -- request side ----------------------------------------------------------------
    def reserve(
        self,
        wallet_id: str,
        *,
        cost: int,
        metered: bool,
        key_id: str,
        request_id: str,
        audio_seconds: int,
    ) -> Reservation:
        """Hold ``cost`` against the wallet, or raise :class:`InsufficientCredits` (402).

        Unmetered keys are never blocked: their usage is recorded at list price, amount 0.
        """
        created_at = now_iso()
        entry = LedgerEntry(
            wallet_id,
            _entry_id(created_at),
            "charge" if metered else "usage",
            -cost if metered else 0,
            created_at,
            status="reserved",
            key_id=key_id,
            request_id=request_id,
            audio_seconds=audio_seconds,
            list_price=cost,
        )
        if metered:
            self._transact_balance_change(entry, require_funds=True)
        else:
            with unavailable_on_outage():
                self.client.transact_write_items(TransactItems=[self._put_entry(entry)])
        return Reservation(wallet_id, entry.entry_id, cost if metered else 0, metered)

    def settle(self, reservation: Reservation) -> None:
        """Make a reservation final."""
        with unavailable_on_outage():
            self.client.update_item(
                TableName=self.ledger_table,
                Key={"wallet_id": reservation.wallet_id, "entry_id": reservation.entry_id},
                UpdateExpression="SET #status = :settled",
                ConditionExpression="#status = :reserved",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":settled": "settled", ":reserved": "reserved"},
            )

    def refund(self, reservation: Reservation) -> None:
        """Give a reservation back; a reservation is refunded at most once."""
        created_at = now_iso()
        mark_refunded = {
            "Update": {
                "TableName": self.ledger_table,
                "Key": {"wallet_id": reservation.wallet_id, "entry_id": reservation.entry_id},
                "UpdateExpression": "SET #status = :refunded",
                "ConditionExpression": "#status = :reserved",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":refunded": "refunded", ":reserved": "reserved"},
            }
        }
        if not reservation.metered:
            with unavailable_on_outage():
                try:
                    self.client.update_item(**mark_refunded["Update"])
                except self.client.exceptions.ConditionalCheckFailedException as exc:
                    raise ReservationClosed(reservation.entry_id) from exc
            return
        entry = LedgerEntry(
            reservation.wallet_id,
            _entry_id(created_at),
            "refund",
            reservation.amount,
            created_at,
            refers_to=reservation.entry_id,
        )
        self._transact_balance_change(entry, also=[mark_refunded])

    def stale_reservations(self, wallet_id: str, *, older_than: str) -> list[Reservation]:
        """Reservations still open that were made before ``older_than`` (an ISO time)."""
        return [
            Reservation(e.wallet_id, e.entry_id, -e.amount, e.kind == "charge")
            for e in self.all_entries(wallet_id)
            if e.status == "reserved" and e.created_at < older_than
        ]

    def wallet_ids(self) -> list[str]:
        """Every wallet id (operator commands only)."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.wallets_table,
            "ProjectionExpression": "wallet_id",
        }
        with unavailable_on_outage():
            while True:
                page = self.client.scan(**kwargs)
                ids.extend(item["wallet_id"] for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return ids
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- the one way a balance changes --------------------------------------------------
    def _transact_balance_change(
        self,
        entry: LedgerEntry,
        *,
        require_funds: bool = False,
        also: list[dict[str, Any]] | None = None,
    ) -> None:
        # The wallet must exist; a debit must also leave the balance at or above zero.
        condition = "attribute_exists(wallet_id)"
        values: dict[str, Any] = {":amount": entry.amount}
        if require_funds:
            condition += " AND balance >= :needed"
            values[":needed"] = -entry.amount
        update_wallet = {
            "Update": {
                "TableName": self.wallets_table,
                "Key": {"wallet_id": entry.wallet_id},
                "UpdateExpression": "SET balance = balance + :amount",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        items = [update_wallet, self._put_entry(entry), *(also or [])]
        with unavailable_on_outage():
            try:
                self.client.transact_write_items(TransactItems=items)
            except self.client.exceptions.TransactionCanceledException as exc:
                raise _cancellation_error(exc, entry) from exc

    def _put_entry(self, entry: LedgerEntry) -> dict[str, Any]:
        item = {name: value for name, value in asdict(entry).items() if value is not None}
        return {
            "Put": {
                "TableName": self.ledger_table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(entry_id)",
            }
        }


class ReservationClosed(RuntimeError):
    """The reservation was already settled or refunded."""


def _cancellation_error(exc: Any, entry: LedgerEntry) -> Exception:
    reasons = exc.response.get("CancellationReasons", [])
    wallet_reason = reasons[0] if reasons else {}
    if wallet_reason.get("Code") == "ConditionalCheckFailed":
        old = plain_item(wallet_reason.get("Item", {}))
        if not old:
            return WalletNotFound(entry.wallet_id)
        return InsufficientCredits(
            f"Insufficient credits: this request costs {-entry.amount} micro-USD and the "
            f"wallet holds {int(old['balance'])}. Top up the wallet and retry.",
        )
    if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons[2:]):
        return ReservationClosed(entry.refers_to or entry.entry_id)
    # Conflicts with a concurrent transaction or throttling: the client should retry.
    return unavailable()


def _wallet(item: dict[str, Any]) -> Wallet:
    return Wallet(item["wallet_id"], int(item["balance"]), item["currency"], item["created_at"])


def _entry(item: dict[str, Any]) -> LedgerEntry:
    numbers = ("amount", "audio_seconds", "list_price", "paid", "fee")
    fields = {k: int(v) if k in numbers else v for k, v in item.items()}
    return LedgerEntry(**fields)
