"""The ``tinyscribe`` command: serve the API, transcribe a file, and operate keys and wallets.

Operator commands print JSON and work against whatever DynamoDB boto3 is pointed at: the
real one with your AWS credentials, or DynamoDB Local through ``AWS_ENDPOINT_URL_DYNAMODB``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from handler.billing import micro_to_usd, split_top_up, usd_to_micro
from handler.config import REPO_ROOT, get_settings
from handler.errors import ApiError
from handler.observability import LOG_FORMATS
from handler.transcript import RESPONSE_FORMATS

if TYPE_CHECKING:
    from handler.services import Services


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.run not in (cmd_serve, cmd_dev):
        _log_to_stderr()  # stdout carries the command's JSON or transcript
    try:
        with _exit_on_stop_signals():
            return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except ApiError as exc:
        print(json.dumps(exc.envelope()), file=sys.stderr)
        return 1
    except (LookupError, ValueError, RuntimeError) as exc:
        print(f"tinyscribe: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyscribe", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--log-format", choices=LOG_FORMATS, default="json", help="json: Powertools + EMF"
    )
    serve.set_defaults(run=cmd_serve)

    transcribe = commands.add_parser("transcribe", help="transcribe a local file (no billing)")
    transcribe.add_argument("file", type=Path)
    transcribe.add_argument("--format", choices=RESPONSE_FORMATS, default="text")
    transcribe.add_argument("--prompt")
    transcribe.set_defaults(run=cmd_transcribe)

    init = commands.add_parser("init", help="create the DynamoDB tables (idempotent)")
    init.set_defaults(run=cmd_init)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key; prints its secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--credits", default="0", help="free credit in USD for a new wallet")
    create.add_argument("--rpm", type=int, help="requests per minute (default from settings)")
    create.add_argument("--plan", choices=("payg", "unmetered"), default="payg")
    create.add_argument("--wallet", help="share an existing wallet instead of creating one")
    create.set_defaults(run=cmd_keys_create)
    key_commands.add_parser("list", help="every key, without secrets").set_defaults(
        run=cmd_keys_list
    )
    revoke = key_commands.add_parser("revoke", help="revoke a key, effective immediately")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=cmd_keys_revoke)

    wallets = commands.add_parser("wallets", help="top up and inspect wallets")
    wallet_commands = wallets.add_subparsers(required=True, metavar="ACTION")
    topup = wallet_commands.add_parser("topup", help="record a payment (the fee is kept)")
    topup.add_argument("wallet_id")
    topup.add_argument("usd", help="amount paid, in USD")
    topup.set_defaults(run=cmd_wallets_topup)
    show = wallet_commands.add_parser("show", help="balance and recent ledger")
    show.add_argument("wallet_id")
    show.add_argument("--entries", type=int, default=20)
    show.set_defaults(run=cmd_wallets_show)

    reconcile = wallet_commands.add_parser(
        "reconcile", help="refund reservations never settled (what the schedule runs)"
    )
    reconcile.add_argument("--grace-seconds", type=int, default=30 * 60)
    reconcile.add_argument(
        "--backfill",
        action="store_true",
        help="first index reservations made before the upgrade (scans the ledger; run once)",
    )
    reconcile.set_defaults(run=cmd_wallets_reconcile)

    dev_db = commands.add_parser("dev-db", help="run DynamoDB Local in the foreground")
    dev_db.add_argument("--port", type=int, default=8001)
    dev_db.add_argument("--in-memory", action="store_true")
    dev_db.add_argument("--data", type=Path, default=REPO_ROOT / ".data")
    dev_db.set_defaults(run=cmd_dev_db)

    dev = commands.add_parser(
        "dev", help="DynamoDB Local + tables + a development key + the API (what `make run` runs)"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--db-port", type=int, default=8001)
    dev.add_argument("--s3-port", type=int, default=8002)
    dev.add_argument("--data", type=Path, default=REPO_ROOT / ".data")
    dev.add_argument(
        "--log-format", choices=LOG_FORMATS, default="text", help="text: one line per request"
    )
    dev.set_defaults(run=cmd_dev)
    return parser


def _log_to_stderr() -> None:
    import logging

    from handler.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)


@contextlib.contextmanager
def _exit_on_stop_signals() -> Iterator[None]:
    """SIGTERM (a process manager, ``kill``) and SIGHUP (a closed terminal) end the command
    as Ctrl-C does: by an exception, so every ``finally`` and ``with`` runs and the children
    they started are stopped. The exit status is 128 + the signal's number, as a shell reports.
    """

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def cmd_serve(args: argparse.Namespace, services: Services | None = None) -> None:
    import uvicorn
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    from handler.api import create_app
    from handler.observability import logger, use_text_output

    if args.log_format == "text":
        use_text_output()
    # uvicorn's own lines in the service's format; the app logs one line per request, so
    # uvicorn's access log would only repeat it.
    copy_config_to_registered_loggers(source_logger=logger, include={"uvicorn", "uvicorn.error"})
    app = create_app(services)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again for the
    # handler it found (see _exit_on_stop_signals). It leaves SIGHUP alone: shut down as for
    # SIGTERM, and exit with SIGHUP's status.
    hung_up: list[int] = []

    def hang_up(signum: int, frame: FrameType | None) -> None:
        hung_up.append(signum)
        server.handle_exit(signal.SIGTERM, frame)

    previous = signal.signal(signal.SIGHUP, hang_up)
    try:
        server.run()
    except SystemExit:
        if hung_up:
            raise SystemExit(128 + signal.SIGHUP) from None
        raise
    finally:
        signal.signal(signal.SIGHUP, previous)


def cmd_transcribe(args: argparse.Namespace) -> None:
    from handler.models import MODEL_ID
    from handler.pipeline import decode_input, run_engine
    from handler.services import Services
    from handler.validation import transcription_request

    settings = get_settings()
    # The API's own validation, as for a request with these fields (verbose_json with word
    # and segment times, as the batch path writes it).
    request = transcription_request(
        model=MODEL_ID,
        language=None,
        prompt=args.prompt,
        response_format=args.format,
        temperature=0.0,
        granularities=["segment", "word"] if args.format == "verbose_json" else [],
    )
    with args.file.open("rb") as source:
        audio = decode_input(source, max_seconds=settings.max_job_audio_seconds)
    _transcript, rendered, _engine_ms = run_engine(Services.from_settings(settings), audio, request)
    sys.stdout.write(rendered.body)
    if not rendered.body.endswith("\n"):
        sys.stdout.write("\n")


def cmd_init(args: argparse.Namespace) -> None:
    from handler.stores.tables import create_tables

    _print({"created": create_tables(get_settings())})


def cmd_keys_create(args: argparse.Namespace) -> None:
    from handler.services import Services

    services = Services.from_settings(get_settings())
    grant = usd_to_micro(args.credits)
    if args.wallet:
        wallet = services.wallets.get(args.wallet)
        if grant:
            raise ValueError("--credits only applies to a new wallet; use `wallets topup`")
    else:
        wallet = services.wallets.create(grant=grant)
    key, secret = services.keys.create(
        name=args.name,
        wallet_id=wallet.wallet_id,
        plan=args.plan,
        rpm=args.rpm or services.settings.default_rpm,
    )
    _print({**asdict(key), "secret": secret, "balance": micro_to_usd(wallet.balance)})


def cmd_keys_list(args: argparse.Namespace) -> None:
    from handler.services import Services

    _print([asdict(key) for key in Services.from_settings(get_settings()).keys.list()])


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    from handler.services import Services

    key = Services.from_settings(get_settings()).keys.revoke(args.key_id)
    if key is None:
        raise LookupError(f"no key with id {args.key_id}")
    _print(asdict(key))


def cmd_wallets_topup(args: argparse.Namespace) -> None:
    from handler.services import Services

    services = Services.from_settings(get_settings())
    paid = usd_to_micro(args.usd)
    fee, credit = split_top_up(paid, services.settings.fee_basis_points)
    entry = services.wallets.top_up(args.wallet_id, paid=paid, fee=fee)
    wallet = services.wallets.get(args.wallet_id)
    _print(
        {
            "wallet_id": wallet.wallet_id,
            "paid": micro_to_usd(paid),
            "fee": micro_to_usd(fee),
            "credit": micro_to_usd(credit),
            "balance": micro_to_usd(wallet.balance),
            "entry_id": entry.entry_id,
        }
    )


def cmd_wallets_show(args: argparse.Namespace) -> None:
    from handler.services import Services

    services = Services.from_settings(get_settings())
    wallet = services.wallets.get(args.wallet_id)
    entries, _ = services.wallets.ledger(args.wallet_id, limit=args.entries)
    _print(
        {
            **asdict(wallet),
            "balance_usd": micro_to_usd(wallet.balance),
            "ledger": [asdict(entry) for entry in entries],
        }
    )


def cmd_wallets_reconcile(args: argparse.Namespace) -> None:
    from handler.reconcile import reconcile
    from handler.services import Services

    services = Services.from_settings(get_settings())
    backfilled = services.wallets.backfill_open_reservations() if args.backfill else 0
    _print({**reconcile(services, args.grace_seconds), "backfilled": backfilled})


def cmd_dev_db(args: argparse.Namespace) -> int:
    from handler.devstack import dynamodb_local_command

    data_dir = None if args.in_memory else args.data / "dynamodb"
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    os.execvp("java", dynamodb_local_command(args.port, data_dir))


def cmd_dev(args: argparse.Namespace) -> None:
    from handler.devstack import (
        LocalS3Notifier,
        start_dynamodb_local,
        start_local_s3,
        stop_process,
        use_local_aws,
    )
    from handler.observability import use_text_output
    from handler.services import Services
    from handler.stores.tables import create_tables

    if args.log_format == "text":
        use_text_output()
    # Whatever ends the server (Ctrl-C, SIGTERM, SIGHUP, an error), the stack stops what was
    # started, last first: the poller, the S3 server, DynamoDB Local.
    with contextlib.ExitStack() as started:
        database = start_dynamodb_local(args.db_port, args.data / "dynamodb")
        started.callback(stop_process, database)
        use_local_aws(dynamodb_port=args.db_port, s3_port=args.s3_port)
        get_settings.cache_clear()
        settings = get_settings()
        storage = start_local_s3(args.s3_port, settings.bucket)
        started.callback(storage.stop)
        created = create_tables(settings)
        print(f"DynamoDB Local on port {args.db_port}: tables ready ({len(created)} created)")
        services = Services.from_settings(settings)
        notifier = LocalS3Notifier(services)
        notifier.start()
        started.callback(notifier.stopped.set)
        secret = _development_key(args.data / "dev-key.json")
        print(f"\nDevelopment key (kept in {args.data}/dev-key.json): {secret}")
        print(f"Page: open http://{args.host}:{args.port}/ in a browser and paste the key there.")
        print(f"Try: curl http://{args.host}:{args.port}/v1/audio/transcriptions \\")
        print(f'  -H "Authorization: Bearer {secret}" -F file=@speech.wav -F model=whisper-1')
        endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
        print(f"Local S3 for jobs and batches ({settings.input_prefix}...): {endpoint}\n")
        cmd_serve(args, services)


def _development_key(path: Path) -> str:
    """The local development key: reused while it still opens, else created with $5 credit."""
    from handler.services import Services

    services = Services.from_settings(get_settings())
    if path.exists():
        secret = str(json.loads(path.read_text())["secret"])
        key = services.keys.verify(secret)
        if key is not None and not key.revoked:
            return secret
    wallet = services.wallets.create(grant=usd_to_micro("5"))
    _key, secret = services.keys.create(
        name="development", wallet_id=wallet.wallet_id, plan="payg", rpm=600
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"secret": secret, "wallet_id": wallet.wallet_id}))
    path.chmod(0o600)
    return secret


if __name__ == "__main__":
    raise SystemExit(main())
