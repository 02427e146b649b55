"""``GET /v1/wallet`` and ``GET /v1/usage`` for the calling key's wallet."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from handler.billing import micro_to_usd
from handler.deps import CallerDep, ServicesDep

router = APIRouter(tags=["billing"])


@router.get("/v1/wallet")
def get_wallet(caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """Balance of the wallet this key draws on, and the key's plan."""
    wallet = services.wallets.get(caller.wallet_id)
    return {
        "object": "wallet",
        "id": wallet.wallet_id,
        "balance_micro_usd": wallet.balance,
        "balance": micro_to_usd(wallet.balance),
        "currency": wallet.currency,
        "plan": caller.plan,
        "price_per_minute": micro_to_usd(services.settings.price_micro_usd_per_minute),
    }


@router.get("/v1/usage")
def list_usage(
    caller: CallerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The wallet's ledger, newest first, paginated with ``after`` (an entry id)."""
    entries, has_more = services.wallets.ledger(caller.wallet_id, limit=limit, after=after)
    data = [
        {"object": "ledger_entry", **{k: v for k, v in asdict(e).items() if v is not None}}
        for e in entries
    ]
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "last_id": entries[-1].entry_id if entries else None,
    }
