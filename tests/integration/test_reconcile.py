"""Reconciliation: every reservation a unit left open is settled or refunded as its unit
says, found through the sparse index, reading nothing else (on tables of the test's own)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from handler.clock import iso_time
from handler.config import REPO_ROOT, Settings
from handler.engine import Engine
from handler.idempotency import idempotency_unit
from handler.pipeline import Payer, UnitOfWork, reserve
from handler.reconcile import reconcile
from handler.services import Services
from handler.stores.idempotency import Acquired, StoredResponse
from handler.stores.jobs import Job, new_job_id
from tests.integration.conftest import Caller, new_caller
from tests.support.clock import FakeClock
from tests.support.faults import dynamodb_client
from tests.support.lambda_context import LambdaContext
from tests.support.money import assert_money_invariants, charges

HOUR = 3600.0


class ReadCounter:
    """Counts what a DynamoDB client reads: items returned or scanned, per operation."""

    def __init__(self, client: Any) -> None:
        self.items: dict[str, int] = {}
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name in ("Query", "Scan"):
            read = int(parsed.get("ScannedCount", 0))
        elif name == "GetItem":
            read = 1 if parsed.get("Item") else 0
        elif name == "BatchGetItem":
            read = sum(len(v) for v in parsed.get("Responses", {}).values())
        else:
            return
        self.items[name] = self.items.get(name, 0) + read

    @property
    def total(self) -> int:
        return sum(self.items.values())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(2_000_000_000.0)


@pytest.fixture
def own(own_tables: Settings, engine: Engine, clock: FakeClock) -> Services:
    """Services on this test's own tables, with a client whose reads are counted."""
    return Services.from_settings(own_tables, engine, dynamodb=dynamodb_client(), clock=clock)


def payer_of(caller: Caller) -> Payer:
    return Payer(caller.key.key_id, caller.key.wallet_id, caller.key.plan == "payg")


def settled_request(services: Services, caller: Caller, n: int) -> None:
    charge = reserve(services, payer_of(caller), UnitOfWork.request(f"req_done_{n}"), 3)
    charge.settle()


def running_job(services: Services, caller: Caller, status: str = "processing") -> Job:
    job_id = new_job_id()
    services.jobs.create(
        Job(job_id, caller.key.key_id, caller.key.wallet_id, True, {}, "a.wav", f"uploads/{job_id}")
    )
    job = services.jobs.start(job_id)
    assert job is not None and job.started_at
    return job


def test_reconciliation_reads_only_the_open_reservations(own: Services, clock: FakeClock) -> None:
    callers = [new_caller(own) for _ in range(3)]
    for n in range(60):  # history: settled charges a ledger scan would have to read
        settled_request(own, callers[n % 3], n)
    # Four units that never finished, one of each kind.
    lost = reserve(own, payer_of(callers[0]), UnitOfWork.request("req_lost"), 5)
    job = running_job(own, callers[1])
    assert job.started_at is not None  # running_job asserts it too
    stuck_job = reserve(own, payer_of(callers[1]), UnitOfWork.job(job.job_id, job.started_at), 8)
    done_job = running_job(own, callers[2])
    assert done_job.started_at is not None
    finished = reserve(
        own,
        payer_of(callers[2]),
        UnitOfWork.job(done_job.job_id, done_job.started_at),
        2,
    )
    # (a job recorded completed while its charge stayed open: the pair disagrees)
    own.dynamodb.update_item(
        **own.jobs.complete_item(done_job, result_key="results/x.json")["Update"]
    )
    claim = own.idempotency.acquire("keyid#abc", "fingerprint")
    assert isinstance(claim, Acquired)
    idem_unit = UnitOfWork(
        idempotency_unit(claim.record),
        claim.record.created_at,
        "req_idem",
        on_refund=(own.idempotency.release_item(claim.record),),
    )
    keyed = reserve(own, payer_of(callers[0]), idem_unit, 4)

    assert reconcile(own) == {"refunded": [], "settled": []}  # all younger than the grace
    clock.advance(HOUR)
    counter = ReadCounter(own.dynamodb)
    done = reconcile(own)

    refunded = {r["entry_id"] for r in done["refunded"]}
    settled = {r["entry_id"] for r in done["settled"]}
    reservation = lambda charge: charge.reservation.entry_id  # noqa: E731
    assert refunded == {reservation(lost), reservation(stuck_job), reservation(keyed)}
    assert settled == {reservation(finished)}
    # What it read: the 4 open reservations from the index, then the 3 units behind them.
    assert counter.items == {"Query": 4, "GetItem": 3}, counter.items
    # The units agree with their charges now.
    failed = own.jobs.get(job.job_id)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and failed.error["type"] == "server_error"
    assert "create a new job" in failed.error["message"]
    assert own.idempotency.get("keyid#abc") is None  # released: the client's retry runs
    for caller in callers:
        assert_money_invariants(own.wallets, caller.key.wallet_id, jobs=own.jobs)
    assert reconcile(own) == {"refunded": [], "settled": []}  # nothing left open


def test_a_completed_idempotent_request_with_an_open_charge_is_settled(
    own: Services, clock: FakeClock
) -> None:
    caller = new_caller(own)
    claim = own.idempotency.acquire("keyid#done", "fingerprint")
    assert isinstance(claim, Acquired)
    unit = UnitOfWork(idempotency_unit(claim.record), claim.record.created_at, "req")
    charge = reserve(own, payer_of(caller), unit, 4)
    assert charge.reservation is not None
    own.idempotency.complete(claim.record, StoredResponse(200, b"{}"))  # stored, not settled
    clock.advance(HOUR)
    assert [r["entry_id"] for r in reconcile(own)["settled"]] == [charge.reservation.entry_id]
    assert_money_invariants(own.wallets, caller.key.wallet_id)


def test_a_unit_that_finishes_while_reconciliation_runs_is_left_alone(
    own: Services, clock: FakeClock
) -> None:
    caller = new_caller(own)
    charge = reserve(own, payer_of(caller), UnitOfWork.request("req_late"), 4)
    assert charge.reservation is not None
    clock.advance(HOUR)
    opened = list(own.wallets.open_reservations(older_than=iso_time(clock())))
    assert [r.entry_id for r in opened] == [charge.reservation.entry_id]
    charge.settle()  # the unit settles between the index read and the repair
    assert reconcile(own) == {"refunded": [], "settled": []}
    (entry,) = charges(own.wallets, caller.key.wallet_id)
    assert entry.status == "settled"
    assert_money_invariants(own.wallets, caller.key.wallet_id)


def test_reservations_from_before_the_index_are_backfilled_once_then_reconciled(
    own: Services, clock: FakeClock
) -> None:
    """A charge the previous version left reserved (no unit, not in the index) is invisible
    to reconciliation until the one-off backfill puts it in the index."""
    caller = new_caller(own)
    own.dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": own.settings.wallets_table,
                    "Key": {"wallet_id": caller.key.wallet_id},
                    "UpdateExpression": "SET balance = balance - :cost",
                    "ExpressionAttributeValues": {":cost": 500},
                }
            },
            {
                "Put": {
                    "TableName": own.settings.ledger_table,
                    "Item": {
                        "wallet_id": caller.key.wallet_id,
                        "entry_id": "2026-01-01T00:00:00.000+00:00#0badc0de",
                        "kind": "charge",
                        "amount": -500,
                        "created_at": "2026-01-01T00:00:00.000+00:00",
                        "status": "reserved",
                        "request_id": "req_before_upgrade",
                    },
                }
            },
        ]
    )
    assert reconcile(own) == {"refunded": [], "settled": []}
    assert own.wallets.backfill_open_reservations() == 1
    assert own.wallets.backfill_open_reservations() == 0
    (refunded,) = reconcile(own)["refunded"]
    assert refunded["entry_id"].endswith("#0badc0de") and refunded["unit"] is None
    assert own.wallets.get(caller.key.wallet_id).balance == 1_000_000


@pytest.fixture
def entry_point(own_tables: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The Lambda entry point configured for this test's tables."""
    from handler import app as entry

    names = {
        "TINYSCRIBE_" + field.upper(): str(getattr(own_tables, field))
        for field in Settings.model_fields
        if field.endswith("_table")
    }
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    entry.reset()
    yield entry
    entry.reset()


def test_the_schedule_event_runs_it(entry_point: Any, own: Services) -> None:
    """The EventBridge schedule's event (events/schedule-reconcile.json) through the entry
    point refunds a reservation whose process died an hour ago."""
    caller = new_caller(own)
    unit = UnitOfWork("request:req_died", iso_time(own.clock() - 2 * HOUR), "req_died")
    charge = reserve(own, payer_of(caller), unit, 8)
    assert charge.reservation is not None
    own.dynamodb.update_item(  # made an hour ago (the entry point runs on the real clock)
        TableName=own.settings.ledger_table,
        Key={"wallet_id": caller.key.wallet_id, "entry_id": charge.reservation.entry_id},
        UpdateExpression="SET created_at = :then",
        ExpressionAttributeValues={":then": "2026-01-01T00:00:00.000+00:00"},
    )
    event = json.loads((REPO_ROOT / "events" / "schedule-reconcile.json").read_text())
    result = entry_point.lambda_handler(event, LambdaContext())
    assert [r["entry_id"] for r in result["refunded"]] == [charge.reservation.entry_id]
    assert own.wallets.get(caller.key.wallet_id).balance == 1_000_000
    assert_money_invariants(own.wallets, caller.key.wallet_id)
