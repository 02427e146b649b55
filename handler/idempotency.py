"""``Idempotency-Key`` for POST routes: a retried request is answered once and charged once.

The semantics are Stripe's and the IETF httpapi draft's ("The Idempotency-Key HTTP Header
Field"):

- The key is scoped to the API key, up to 255 visible ASCII characters (a UUID is the usual
  choice). Requests without it work as before.
- The first request with a key runs; its response (status, body, and the headers that say
  what it is and what it cost) is stored in the same transaction that settles its charge,
  and sent again, with ``Idempotent-Replayed: true``, to every request with the same key and
  the same request for 24 hours. Nothing is charged again.
- The same key while the first request is still running: 409 with ``Retry-After``.
- The same key with a different request (another file, other fields, another route): 422.
  The request is fingerprinted by the SHA-256 of its route, its fields and the file's bytes.
- What is stored: success, and the errors that a retry of the same request would meet again
  (400, 404, 413: bad field, undecodable or overlong audio, unknown model). Not stored, so
  a retry runs again: 5xx (the key is released in the transaction that refunds), 402
  (the wallet can be topped up), and errors of the request's form (422 validation).

A route adopts it with a parameter and one call::

    def create_x(..., idempotency: IdempotencyDep) -> Response:
        unit = idempotency.unit()  # the UnitOfWork to charge, derived from the key
        ...
        run.settle(*idempotency.completion(response))  # stored with the settlement
        # or, when no money moves: return idempotency.respond(body, status_code=201)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, BinaryIO

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from handler.context import request_context
from handler.deps import LimitedCallerDep, ServicesDep
from handler.errors import ApiError, InvalidRequest
from handler.middleware import error_response
from handler.observability import logger
from handler.pipeline import UnitOfWork
from handler.stores.dynamo import TransactItem
from handler.stores.idempotency import (
    IdempotencyRecord,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    StoredResponse,
    record_id,
)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers a replay repeats: what the body is, and what it cost (rate-limit headers and the
# request id are the replaying request's own).
STORED_HEADERS = ("content-type", "x-tinyscribe-billed-seconds", "x-tinyscribe-cost-micro-usd")
STORED_ERROR_STATUSES = frozenset({400, 404, 413})
IN_FLIGHT_RETRY_SECONDS = 2
_HASH_CHUNK = 1024 * 1024


class IdempotencyKeyInUse(ApiError):
    status = 409
    type = "invalid_request_error"
    default_code = "idempotency_key_in_use"


class IdempotencyKeyReused(ApiError):
    status = 422
    type = "invalid_request_error"
    default_code = "idempotency_key_reused"


class IdempotentReplay(Exception):
    """Raised by the dependency to answer with a stored response (see :func:`replay`)."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__("replay")
        self.response = response


@dataclass
class Idempotency:
    """The request's Idempotency-Key as the route sees it (``record`` is None without one)."""

    request_id: str
    store: IdempotencyStore | None = None
    record: IdempotencyRecord | None = None
    finished: bool = field(default=False)

    def unit(self) -> UnitOfWork:
        """The unit of work this request is charged as: the key (all retries of it are one
        unit; a refund releases the key) or, without one, the request itself."""
        if self.record is None or self.store is None:
            return UnitOfWork.request(self.request_id)
        return UnitOfWork(
            idempotency_unit(self.record),
            self.record.created_at,
            self.request_id,
            on_refund=(self.store.release_item(self.record),),
        )

    def completion(self, response: Response) -> tuple[TransactItem, ...]:
        """The write storing ``response``, to pass to ``settle`` (nothing without a key)."""
        if self.record is None or self.store is None:
            return ()
        # From here the key's fate is the settlement's: stored with it, or released by the
        # refund that follows a failed settlement (or, if that fails too, left to its lock).
        self.finished = True
        return (self.store.completion_item(self.record, stored(response)),)

    def handed_over(self) -> None:
        """A streamed response has taken the key over: its settlement stores the complete
        stream (:meth:`completion`) or its refund releases the key (the unit's ``on_refund``),
        on the stream's own thread and possibly after the client has gone; the dependency
        must not release it when the route returns."""
        self.finished = True

    def respond(self, content: Any, *, status_code: int = 200) -> Response:
        """A JSON response, stored under the key first (routes that move no money)."""
        response = JSONResponse(content, status_code=status_code)
        if self.record is not None and self.store is not None:
            self.store.complete(self.record, stored(response))
            self.finished = True
        return response

    def finish_with_error(self, error: ApiError) -> None:
        """Store an error a retry would meet again; give the key back for any other."""
        if self.record is None or self.store is None or self.finished:
            return
        self.finished = True
        try:
            if error.status in STORED_ERROR_STATUSES:
                self.store.complete(self.record, stored(error_response(error)))
            else:
                self.store.release(self.record)
        except ApiError:  # the database is down: the lock runs out instead
            logger.warning("could not finish an idempotency key", extra={"id": self.record.id})

    def release(self) -> None:
        """Give the key back (the request failed before its outcome was stored)."""
        if self.record is None or self.store is None or self.finished:
            return
        self.finished = True
        try:
            self.store.release(self.record)
        except ApiError:
            logger.warning("could not release an idempotency key", extra={"id": self.record.id})


def idempotency_unit(record: IdempotencyRecord) -> str:
    """The unit of work of one incarnation of a key: ``idempotency:<record id>:<incarnation>``."""
    return f"idempotency:{record.id}:{record.incarnation}"


def stored(response: Response) -> StoredResponse:
    """What is kept of a response for replays."""
    headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
    return StoredResponse(response.status_code, bytes(response.body), headers)


def check_key(value: str) -> str:
    """The header's value, or a 400 naming what is wrong with it."""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in value):
        raise InvalidRequest(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            "(a UUID is a good choice).",
            param=HEADER,
            code="invalid_idempotency_key",
        )
    return value


async def request_fingerprint(request: Request) -> str:
    """SHA-256 of what the request asks for: its route, its fields and its file's bytes
    (multipart), or its JSON body (whatever the key order and spacing)."""
    material: list[Any] = [request.method, request.url.path]
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        fields: list[tuple[str, str]] = []
        for name, value in (await request.form()).multi_items():
            if isinstance(value, UploadFile):
                digest = await run_in_threadpool(_file_digest, value.file)
                fields.append((name, f"sha256:{digest}"))
            else:
                fields.append((name, value))
        material.append(sorted(fields))
    else:
        body = await request.body()
        try:
            material.append(json.loads(body))
        except ValueError:
            material.append(hashlib.sha256(body).hexdigest())
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _file_digest(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    while chunk := file.read(_HASH_CHUNK):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


async def idempotency(
    request: Request,
    caller: LimitedCallerDep,
    services: ServicesDep,
    value: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Makes retries safe: a unique value per request (a UUID). The first "
            "response is stored and replayed for 24 hours without a second charge; 409 while "
            "it runs, 422 if the key is reused for another request.",
        ),
    ] = None,
) -> AsyncIterator[Idempotency]:
    """The dependency: claim the key (after authentication and the rate limit), replay a
    stored response, or refuse a duplicate; afterwards store or release the outcome."""
    request_id = request_context(request).request_id
    if value is None:
        yield Idempotency(request_id)
        return
    key = check_key(value)
    fingerprint = await request_fingerprint(request)
    store = services.idempotency
    claim = await run_in_threadpool(store.acquire, record_id(caller.key_id, key), fingerprint)
    if isinstance(claim, Replay):
        assert claim.record.response is not None
        raise IdempotentReplay(claim.record.response)
    if isinstance(claim, InFlight):
        raise IdempotencyKeyInUse(
            f"A request with this {HEADER} is still being processed. Retry shortly to get "
            "its response.",
            headers={
                "Retry-After": str(IN_FLIGHT_RETRY_SECONDS),
                "retry-after-ms": str(IN_FLIGHT_RETRY_SECONDS * 1000),
            },
        )
    if isinstance(claim, Mismatch):
        raise IdempotencyKeyReused(
            f"This {HEADER} was used for a different request (another file, other fields or "
            "another route). Use a new key for a new request.",
        )
    held = Idempotency(request_id, store, claim.record)
    try:
        yield held
    except ApiError as exc:
        await run_in_threadpool(held.finish_with_error, exc)
        raise
    except BaseException:
        await run_in_threadpool(held.release)
        raise
    else:
        if not held.finished:  # the route returned without storing: nothing to replay
            await run_in_threadpool(held.release)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


async def replay(request: Request, exc: Exception) -> Response:
    """Exception handler: the stored response, marked as a replay (the middleware adds this
    request's own rate-limit headers)."""
    assert isinstance(exc, IdempotentReplay)
    stored_response = exc.response
    headers = {**stored_response.headers, REPLAYED_HEADER: "true"}
    return Response(stored_response.body, status_code=stored_response.status, headers=headers)
