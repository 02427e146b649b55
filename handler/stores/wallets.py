"""Prepaid wallets and their ledger.

Every change of a balance is one DynamoDB transaction that also writes the ledger entry
explaining it, so the ledger of a wallet always sums to its balance. A unit of work (a
request, a job) *reserves* its cost up front (a conditional write: the balance must cover
it), then *settles* (marks the reservation final) or is *refunded* (gives it back), each
with whatever other state change goes with it in the same transaction.

A reservation's entry id is derived from its unit of work and written only if absent, so a
second attempt of the unit finds the first one's reservation instead of charging again.
While ``reserved`` an entry carries ``open_reservation``, the key of a sparse index that
reconciliation reads instead of the ledgers.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from handler.clock import Clock, iso_time
from handler.errors import InsufficientCredits
from handler.stores.dynamo import (
    TransactItem,
    cancellation_reasons,
    client,
    failed_condition,
    old_item,
    unavailable,
    unavailable_on_outage,
)
from handler.stores.schema import OPEN_RESERVATIONS_INDEX

EntryKind = Literal["grant", "top_up", "charge", "refund", "usage"]
CURRENCY = "usd"


OPEN = "open"
"""Value of ``open_reservation`` on entries still reserved (the sparse index's key)."""


class WalletNotFound(LookupError):
    """No wallet with this id (for a key's wallet: the key is unusable until an operator
    fixes it; the API answers 401)."""

    def __init__(self, wallet_id: str) -> None:
        super().__init__(wallet_id)
        self.wallet_id = wallet_id


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
    unit: str | None = None
    """For charges and usage: the unit of work (``request:...``, ``idempotency:...``,
    ``job:...``) the reservation belongs to."""


@dataclass(frozen=True)
class Reservation:
    """A charge held against a wallet while its unit of work runs."""

    wallet_id: str
    entry_id: str
    amount: int
    """Micro-USD held (0 for unmetered usage)."""
    metered: bool
    unit: str | None = None


def reservation_entry_id(unit: str, started_at: str) -> str:
    """The ledger entry id of ``unit``'s reservation: the same for every attempt of the unit.

    ``started_at`` (ISO time of the unit's first attempt) keeps the ledger sorted by time; the
    hash keeps ids short (``/v1/usage?after=`` takes them) whatever the unit's name."""
    return f"{started_at}#{hashlib.sha256(unit.encode()).hexdigest()[:16]}"


def new_wallet_id() -> str:
    return f"wal_{secrets.token_hex(8)}"


def _entry_id(created_at: str) -> str:
    # Sorts by time; the random tail keeps simultaneous entries distinct.
    return f"{created_at}#{secrets.token_hex(4)}"


class WalletStore:
    """The wallets and ledger tables."""

    def __init__(
        self,
        wallets_table: str,
        ledger_table: str,
        dynamodb: Any | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.wallets_table = wallets_table
        self.ledger_table = ledger_table
        self.client = dynamodb or client()
        self.clock = clock

    def _now(self) -> str:
        return iso_time(self.clock())

    # -- operator side ---------------------------------------------------------------
    def create(self, *, wallet_id: str | None = None, grant: int = 0) -> Wallet:
        """A new wallet, optionally starting with ``grant`` micro-USD of free credit."""
        created_at = self._now()
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
        created_at = self._now()
        credit = paid - fee
        entry = LedgerEntry(
            wallet_id, _entry_id(created_at), "top_up", credit, created_at, paid=paid, fee=fee
        )
        self._transact_balance_change(entry)
        return entry

    def get(self, wallet_id: str) -> Wallet:
        """The wallet, read consistently."""
        with unavailable_on_outage():
            item = self.client.get_item(
                TableName=self.wallets_table, Key={"wallet_id": wallet_id}, ConsistentRead=True
            ).get("Item")
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
        entry_id: str,
        unit: str,
        cost: int,
        metered: bool,
        key_id: str,
        request_id: str,
        audio_seconds: int,
    ) -> Reservation:
        """Hold ``cost`` against the wallet under ``entry_id`` (see
        :func:`reservation_entry_id`), or find the reservation an earlier attempt of the same
        unit made and carry on with it.

        Raises :class:`InsufficientCredits` (402), :class:`WalletNotFound` (401) and
        :class:`ReservationClosed` when this unit's reservation was already settled or
        refunded. Unmetered keys are never blocked: their usage is recorded at list price,
        amount 0.
        """
        created_at = self._now()
        entry = LedgerEntry(
            wallet_id,
            entry_id,
            "charge" if metered else "usage",
            -cost if metered else 0,
            created_at,
            status="reserved",
            key_id=key_id,
            request_id=request_id,
            audio_seconds=audio_seconds,
            list_price=cost,
            unit=unit,
        )
        put = self._put_entry(entry, open_reservation=True)
        put["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        wallet: TransactItem
        if metered:
            wallet = self._wallet_update(entry.amount, wallet_id, require_funds=-entry.amount)
        else:
            wallet = {
                "ConditionCheck": {
                    "TableName": self.wallets_table,
                    "Key": {"wallet_id": wallet_id},
                    "ConditionExpression": "attribute_exists(wallet_id)",
                }
            }
        with unavailable_on_outage():
            try:
                self.client.transact_write_items(TransactItems=[wallet, put])
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = cancellation_reasons(exc)
                existing = old_item(reasons[1]) if len(reasons) > 1 else None
                if existing is not None:
                    return _resumed(existing)
                raise _cancellation_error(exc, entry) from exc
        return Reservation(wallet_id, entry_id, cost if metered else 0, metered, unit)

    def settle(self, reservation: Reservation, *also: TransactItem) -> None:
        """Make a reservation final, writing ``also`` in the same transaction.

        Settling again what is already settled does nothing (a retried call whose first
        answer was lost). Raises :class:`ReservationClosed` if it was refunded, or if one of
        ``also`` no longer holds (the unit was closed another way).
        """
        mark = self._close(reservation, "settled")
        with unavailable_on_outage():
            try:
                if also:
                    self.client.transact_write_items(TransactItems=[mark, *also])
                else:
                    self.client.update_item(**mark["Update"])
            except (
                self.client.exceptions.TransactionCanceledException,
                self.client.exceptions.ConditionalCheckFailedException,
            ) as exc:
                if self.entry_status(reservation) == "settled":
                    return
                raise ReservationClosed(reservation.entry_id) from exc

    def refund(self, reservation: Reservation, *also: TransactItem) -> None:
        """Give a reservation back (at most once), writing ``also`` in the same transaction.

        Raises :class:`ReservationClosed` if it was settled or refunded already, or if one of
        ``also`` no longer holds.
        """
        mark_refunded = self._close(reservation, "refunded")
        if not reservation.metered:
            with unavailable_on_outage():
                try:
                    self.client.transact_write_items(TransactItems=[mark_refunded, *also])
                except self.client.exceptions.TransactionCanceledException as exc:
                    raise ReservationClosed(reservation.entry_id) from exc
            return
        created_at = self._now()
        entry = LedgerEntry(
            reservation.wallet_id,
            _entry_id(created_at),
            "refund",
            reservation.amount,
            created_at,
            refers_to=reservation.entry_id,
        )
        self._transact_balance_change(entry, also=[mark_refunded, *also])

    def transact(self, items: list[TransactItem]) -> None:
        """Write state changes that move no money, all or none (:class:`ReservationClosed`
        when one no longer holds)."""
        with unavailable_on_outage():
            try:
                self.client.transact_write_items(TransactItems=items)
            except self.client.exceptions.TransactionCanceledException as exc:
                raise ReservationClosed("state changed meanwhile") from exc

    def entry_status(self, reservation: Reservation) -> str | None:
        """The reservation's status as stored now (reserved, settled, refunded)."""
        with unavailable_on_outage():
            item = self.client.get_item(
                TableName=self.ledger_table,
                Key={"wallet_id": reservation.wallet_id, "entry_id": reservation.entry_id},
                ConsistentRead=True,
            ).get("Item")
        return item.get("status") if item else None

    def open_reservations(self, *, older_than: str) -> Iterator[Reservation]:
        """Reservations still open that were made before ``older_than`` (an ISO time), read
        from the sparse index: the cost follows the open reservations, not the ledgers."""
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.ledger_table,
            IndexName=OPEN_RESERVATIONS_INDEX,
            KeyConditionExpression="open_reservation = :open AND created_at < :cutoff",
            ExpressionAttributeValues={":open": OPEN, ":cutoff": older_than},
        )
        with unavailable_on_outage():
            for page in pages:
                for item in page.get("Items", []):
                    yield _reservation(item)

    def backfill_open_reservations(self) -> int:
        """Put reservations written before the open-reservations index (still ``reserved``,
        without ``open_reservation``) into it; returns how many. A one-off after upgrading:
        it scans the whole ledger, which reconciliation itself never does."""
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.ledger_table,
            FilterExpression="#status = :reserved AND attribute_not_exists(open_reservation)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":reserved": "reserved"},
            ProjectionExpression="wallet_id, entry_id",
        )
        count = 0
        with unavailable_on_outage():
            for page in pages:
                for item in page.get("Items", []):
                    try:
                        self.client.update_item(
                            TableName=self.ledger_table,
                            Key={"wallet_id": item["wallet_id"], "entry_id": item["entry_id"]},
                            UpdateExpression="SET open_reservation = :open",
                            ConditionExpression="#status = :reserved",
                            ExpressionAttributeNames={"#status": "status"},
                            ExpressionAttributeValues={":open": OPEN, ":reserved": "reserved"},
                        )
                    except self.client.exceptions.ConditionalCheckFailedException:
                        continue  # closed meanwhile
                    count += 1
        return count

    def _close(self, reservation: Reservation, status: str) -> TransactItem:
        """Move a reservation out of ``reserved`` (and out of the open-reservations index)."""
        return {
            "Update": {
                "TableName": self.ledger_table,
                "Key": {"wallet_id": reservation.wallet_id, "entry_id": reservation.entry_id},
                "UpdateExpression": "SET #status = :status REMOVE open_reservation",
                "ConditionExpression": "#status = :reserved",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":status": status, ":reserved": "reserved"},
            }
        }

    # -- the one way a balance changes --------------------------------------------------
    def _transact_balance_change(
        self,
        entry: LedgerEntry,
        *,
        require_funds: bool = False,
        also: list[TransactItem] | None = None,
    ) -> None:
        update_wallet = self._wallet_update(
            entry.amount, entry.wallet_id, require_funds=-entry.amount if require_funds else None
        )
        items = [update_wallet, self._put_entry(entry), *(also or [])]
        with unavailable_on_outage():
            try:
                self.client.transact_write_items(TransactItems=items)
            except self.client.exceptions.TransactionCanceledException as exc:
                raise _cancellation_error(exc, entry) from exc

    def _wallet_update(
        self, amount: int, wallet_id: str, *, require_funds: int | None = None
    ) -> TransactItem:
        # The wallet must exist; a debit must also leave the balance at or above zero.
        condition = "attribute_exists(wallet_id)"
        values: dict[str, Any] = {":amount": amount}
        if require_funds is not None:
            condition += " AND balance >= :needed"
            values[":needed"] = require_funds
        return {
            "Update": {
                "TableName": self.wallets_table,
                "Key": {"wallet_id": wallet_id},
                "UpdateExpression": "SET balance = balance + :amount",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _put_entry(self, entry: LedgerEntry, *, open_reservation: bool = False) -> TransactItem:
        item = {name: value for name, value in asdict(entry).items() if value is not None}
        if open_reservation:
            item["open_reservation"] = OPEN
        return {
            "Put": {
                "TableName": self.ledger_table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(entry_id)",
            }
        }


class ReservationClosed(RuntimeError):
    """The reservation was already settled or refunded (or the state change that had to go
    with it no longer holds)."""


def _resumed(item: dict[str, Any]) -> Reservation:
    """The reservation an earlier attempt of the unit made, if it is still open."""
    entry = _entry(item)
    if entry.status != "reserved":
        raise ReservationClosed(entry.entry_id)
    return Reservation(
        entry.wallet_id, entry.entry_id, -entry.amount, entry.kind == "charge", entry.unit
    )


def _cancellation_error(exc: Any, entry: LedgerEntry) -> Exception:
    reasons = cancellation_reasons(exc)
    wallet_reason = reasons[0] if reasons else {}
    if failed_condition(wallet_reason):
        old = old_item(wallet_reason)
        if not old:
            return WalletNotFound(entry.wallet_id)
        return InsufficientCredits(
            f"Insufficient credits: this request costs {-entry.amount} micro-USD and the "
            f"wallet holds {int(old['balance'])}. Top up the wallet and retry.",
        )
    if any(failed_condition(reason) for reason in reasons[2:]):
        return ReservationClosed(entry.refers_to or entry.entry_id)
    # Conflicts with a concurrent transaction or throttling: the client should retry.
    return unavailable()


def _wallet(item: dict[str, Any]) -> Wallet:
    return Wallet(item["wallet_id"], int(item["balance"]), item["currency"], item["created_at"])


_ENTRY_FIELDS = frozenset(f.name for f in fields(LedgerEntry))
_NUMBERS = frozenset({"amount", "audio_seconds", "list_price", "paid", "fee"})


def _entry(item: dict[str, Any]) -> LedgerEntry:
    values: dict[str, Any] = {
        k: int(v) if k in _NUMBERS else v for k, v in item.items() if k in _ENTRY_FIELDS
    }
    return LedgerEntry(**values)


def _reservation(item: dict[str, Any]) -> Reservation:
    """From an item of the open-reservations index (keys, amount, kind, unit)."""
    return Reservation(
        item["wallet_id"],
        item["entry_id"],
        -int(item["amount"]),
        item["kind"] == "charge",
        item.get("unit"),
    )
