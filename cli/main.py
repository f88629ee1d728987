"""The `causeloop` command: local development, one process per compose service, and operations."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

import msgspec
import psycopg

from adapters.event_store import EventStore
from adapters.settings import Settings, SettingsError, load_settings
from cli import services
from cli.embedded import EmbeddedServerError
from cli.run import Worker, api_server, run
from cli.token import UsageError, issue_dev_clerk_token, issue_dev_token, parse_role, parse_scopes
from commands.provisioning import Provision, ProvisioningCommands
from domain.errors import DomainError
from domain.identity.events import Plan
from projections.schema import migrate

log = logging.getLogger("causeloop")

Handler = Callable[[argparse.Namespace, Settings, Mapping[str, str]], int]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    handler: Handler = args.handler
    try:
        return handler(args, load_settings(environ), environ)
    except (SettingsError, UsageError, DomainError) as exc:
        print(f"causeloop {args.command}: {exc}", file=sys.stderr)
        return 2
    except (services.ServicesNotFound, services.AlreadyRunning, EmbeddedServerError) as exc:
        print(f"causeloop {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="causeloop", description="Causeloop backend: run it, operate it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help, description=help)
        child.set_defaults(handler=handler)
        return child

    command("up", _up, "run everything locally: embedded Postgres and NATS unless DATABASE_URL / NATS_URL")
    command("migrate", _migrate, "create or update the database schema, then exit")
    command("api", _api, "serve the HTTP API only (one compose service)")
    relay = command("relay", _relay, "run the relay, event store -> NATS (or `relay status`, `relay reset-stream`)")
    relay.add_argument("action", nargs="?", choices=["run", "status", "reset-stream"], default="run",
                       help="reset-stream: delete and recreate NATS_STREAM, then republish this store's events")
    relay.add_argument("--including-other-stores", action="store_true",
                       help="reset-stream: also when the stream holds another event store's messages")
    relay.add_argument("--wait-seconds", type=float, default=30.0,
                       help="reset-stream: how long to wait for the relay's leadership")
    projector = command("projector", _projector,
                        "run read models' projector: one consumer and one transaction per batch for all it hosts")
    projector.add_argument("names", nargs="*", metavar="NAME", help="the read models to host (default: every one)")
    webhooks = command("webhooks", _webhooks, "outbound webhooks: `webhooks run` (the delivery worker alone) "
                                              "or `webhooks redeliver DELIVERY_ID`")
    webhooks.add_argument("action", choices=["run", "redeliver"])
    webhooks.add_argument("delivery_id", nargs="?", metavar="DELIVERY_ID")
    channels = command("channels", _channels, "notification channels: `channels run` (the worker that sends e-mail, "
                                              "Slack, Teams and PagerDuty notices; run several at will)")
    channels.add_argument("action", choices=["run"])
    command("pattern-detector", _folding_worker("pattern-detector"),
            "run the pattern-detection worker: groups every new issue into a pattern (one leads, others stand by)")
    command("recommender", _folding_worker("recommender"),
            "run the recommendation worker: proposes fixes and verifies them (one leads, others stand by)")
    command("prediction-worker", _folding_worker("prediction-worker"),
            "run the prediction worker: recurrence forecasts and alert rules (one leads, others stand by)")
    projections = command("projections", _projections, "read-model operations")
    projections.add_argument("action", choices=["status", "rebuild", "retry"],
                             help="status; rebuild NAME from the event store; retry NAME's parked messages")
    projections.add_argument("name", nargs="?")
    projections.add_argument("--discard-foreign", action="store_true",
                             help="retry: forget parked messages that are not this store's events")
    token = command("token", _token, "print a development access token (creates the user and workspace)")
    token.add_argument("--email", required=True)
    token.add_argument("--workspace", default="default", help="workspace slug; each slug is its own tenant")
    token.add_argument("--role", default="owner")
    token.add_argument("--scope", action="append", dest="scopes", metavar="SCOPE",
                       help="narrow the token to these scopes (repeat, or separate with commas)")
    token.add_argument("--clerk", action="store_true",
                       help="print a development Clerk session token for POST /v1/auth/exchange instead")
    token.add_argument("--invitee", action="store_true",
                       help="with --clerk: register nobody (an invited person signs in with invitation_token)")
    provision = command("provision", _provision,
                        "operator: provision a client (organization + workspace + owner) in one transaction")
    provision.add_argument("--org-name", required=True)
    provision.add_argument("--org-slug", required=True, help="globally unique; also the workspace's slug")
    provision.add_argument("--owner-email", required=True, help="an existing user with this email is reused")
    provision.add_argument("--owner-name", help="default: the email's local part")
    provision.add_argument("--workspace-name", help="default: the organization's name")
    provision.add_argument("--plan", default="free", choices=[p.value for p in Plan])
    provision.add_argument("--timezone", default="UTC", help="IANA time zone of the workspace")
    provision.add_argument("--seats", type=int, default=10, help="most active memberships (default 10)")
    offboard = command("offboard", _offboard, "operator: offboard a client; every token of its workspace stops")
    offboard.add_argument("--org-slug", required=True)
    offboard.add_argument("--wait-seconds", type=float, default=10.0,
                          help="wait this long for the API's read model to have it (tokens refused from then on)")
    sync_worker = command("sync-worker", _sync_worker,
                          "run the connector sync worker and scheduler (one compose service; run several at will)")
    sync_worker.add_argument("--no-schedule", action="store_true", help="execute queued runs only")
    connectors = command("connectors", _connectors, "operator: sync a connector now, or list its runs")
    connectors.add_argument("action", choices=["sync", "runs"],
                            help="sync ID: queue a run, follow it; runs ID: the latest runs, following a running one")
    connectors.add_argument("connector_id", metavar="ID")
    connectors.add_argument("--backfill-days", type=int, help="sync: a historical backfill of this many days (1-365)")
    connectors.add_argument("--limit", type=int, default=20, help="runs: how many (default 20)")
    connectors.add_argument("--no-follow", action="store_true", help="do not follow the run's progress")
    test_services = command("test-services", _test_services,
                            "start/stop embedded Postgres and NATS for the tests when none is reachable")
    test_services.add_argument("action", choices=["start", "stop"])
    return parser


def _up(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from api import app
    from projections.registry import PROJECTIONS
    from workers.channel_delivery import run_channel_delivery
    from workers.pattern_detector import run_pattern_detector
    from workers.prediction_worker import run_prediction_worker
    from workers.projector_runner import run_projectors
    from workers.recommender import run_recommender
    from workers.relay import run_relay
    from workers.sync.worker import run_sync_worker
    from workers.webhook_delivery import run_webhooks

    _configure_logging(settings)
    signal.signal(signal.SIGTERM, _interrupt)  # until the event loop takes over: unwind and stop the servers
    with services.local_services(settings) as local:
        migrate(local)
        server = api_server(app.create_app(local), local)
        workers: dict[str, Worker] = {"relay": functools.partial(run_relay, local)}
        workers["projector"] = functools.partial(run_projectors, local, list(PROJECTIONS))
        workers["webhooks"] = functools.partial(run_webhooks, local)
        workers["channels"] = functools.partial(run_channel_delivery, local)
        workers["sync"] = functools.partial(run_sync_worker, local)
        workers["pattern-detector"] = functools.partial(run_pattern_detector, local)
        workers["recommender"] = functools.partial(run_recommender, local)
        workers["prediction-worker"] = functools.partial(run_prediction_worker, local)
        print(_banner(settings, local), flush=True)
        run(server, workers)
    return 0


def _migrate(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    settings = services.resolve(settings)
    migrate(settings)
    print(f"migrated schema {settings.database_schema}")
    return 0


def _api(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from api import app

    settings = services.resolve(settings, nats=True)
    _configure_logging(settings)
    run(api_server(app.create_app(settings), settings), {})
    return 0


def _relay(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from workers import operations
    from workers.relay import run_relay

    if args.action == "status":
        print(operations.relay_status(services.resolve(settings)))
        return 0
    settings = services.resolve(settings, nats=True)
    if args.action == "reset-stream":
        from workers.reset_stream import ResetRefused, reset_stream

        try:
            print(reset_stream(settings, including_other_stores=args.including_other_stores,
                               wait_s=args.wait_seconds))
        except ResetRefused as refusal:
            print(f"causeloop relay reset-stream: {refusal}", file=sys.stderr)
            return 1
        return 0
    _configure_logging(settings)
    run(None, {"relay": functools.partial(run_relay, settings)})
    return 0


def _folding_worker(name: str) -> Handler:
    """`causeloop pattern-detector | recommender | prediction-worker`: one folding worker alone (as compose runs it)."""

    def start(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
        from workers.pattern_detector import run_pattern_detector
        from workers.prediction_worker import run_prediction_worker
        from workers.recommender import run_recommender

        main = {"pattern-detector": run_pattern_detector, "recommender": run_recommender,
                "prediction-worker": run_prediction_worker}[name]
        settings = services.resolve(settings, nats=True)
        _configure_logging(settings)
        run(None, {name: functools.partial(main, settings)})
        return 0

    return start


def _projector(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from projections.registry import PROJECTIONS
    from workers.projector_runner import run_projectors

    names = [_projection_name(name, PROJECTIONS) for name in args.names] or list(PROJECTIONS)
    settings = services.resolve(settings, nats=True)
    _configure_logging(settings)
    run(None, {"projector " + "+".join(sorted(set(names))): functools.partial(run_projectors, settings, names)})
    return 0


def _projections(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from projections.registry import PROJECTIONS
    from workers import operations

    settings = services.resolve(settings)
    if args.action == "status":
        print(operations.projections_status(settings))
    elif args.action == "rebuild":
        print(operations.rebuild(settings, _projection_name(args.name, PROJECTIONS)))
    else:
        from projections.registry import RETRIABLE
        from workers.retry import retry_parked

        report, still_parked = retry_parked(settings, _projection_name(args.name, RETRIABLE),
                                            discard_foreign=args.discard_foreign)
        print(report)
        return 1 if still_parked else 0
    return 0


def _webhooks(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from cli import webhooks
    from workers.webhook_delivery import run_webhooks

    if args.action == "redeliver":
        if not args.delivery_id:
            raise UsageError("webhooks redeliver needs a DELIVERY_ID")
        print(msgspec.json.encode(webhooks.redeliver(services.resolve(settings), args.delivery_id)).decode())
        return 0
    _configure_logging(settings)
    run(None, {"webhooks": functools.partial(run_webhooks, settings)})
    return 0


def _channels(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from workers.channel_delivery import run_channel_delivery

    _configure_logging(settings)
    run(None, {"channels": functools.partial(run_channel_delivery, settings)})
    return 0


def _token(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    role = parse_role(args.role)
    if args.invitee and not args.clerk:
        raise UsageError("--invitee only goes with --clerk")
    if args.clerk:
        print(issue_dev_clerk_token(settings, email=args.email, workspace_slug=args.workspace, role=role,
                                    invitee=args.invitee))
        return 0
    print(issue_dev_token(settings, email=args.email, workspace_slug=args.workspace, role=role,
                          scopes=parse_scopes(role, args.scopes)))
    return 0


def _provision(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    """Prints the new ids as one JSON object; a duplicate slug (or any refused value) exits 1 with the reason."""
    cmd = Provision(org_name=args.org_name, org_slug=args.org_slug, owner_email=args.owner_email,
                    owner_name=args.owner_name, workspace_name=args.workspace_name, plan=Plan(args.plan),
                    timezone=args.timezone, seats=args.seats)
    def run(commands: ProvisioningCommands) -> dict[str, object]:
        done = commands.provision(cmd)
        return {"organization_id": done.organization_id, "workspace_id": done.workspace_id,
                "owner_user_id": done.owner_user_id, "membership_id": done.membership_id}

    return _operate(args, settings, run)


def _offboard(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    def run(commands: ProvisioningCommands) -> dict[str, object]:
        done = commands.offboard(args.org_slug)
        if not wait_for_projection(services.resolve(settings), "identity", done.position, args.wait_seconds):
            print(f"causeloop offboard: recorded, but the identity projection has not applied it within "
                  f"{args.wait_seconds:g}s; tokens are refused once it has (is a projector running?)", file=sys.stderr)
        return {"organization_id": done.organization_id, "workspace_ids": done.workspace_ids}

    return _operate(args, settings, run)


def _operate(args: argparse.Namespace, settings: Settings,
             action: Callable[[ProvisioningCommands], dict[str, object]]) -> int:
    store = EventStore(services.resolve(settings), pool_size=1)
    try:
        result = action(ProvisioningCommands(store))
    except DomainError as exc:
        print(f"causeloop {args.command}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(msgspec.json.encode(result).decode())
    return 0


def wait_for_projection(settings: Settings, name: str, position: int, timeout: float) -> bool:
    """Poll the projection's checkpoint until it reaches `position` (the CLI has no LISTEN waiter)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while True:
            row = conn.execute(f'SELECT position FROM "{settings.database_schema}".projection_checkpoints'
                               " WHERE name = %s", (name,)).fetchone()
            if row is not None and int(row[0]) >= position:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _sync_worker(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from workers.sync.worker import run_sync_worker

    settings = services.resolve(settings)
    _configure_logging(settings)
    run(None, {"sync": functools.partial(run_sync_worker, settings, schedule=not args.no_schedule)})
    return 0


def _connectors(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    """`sync` queues a run (exit 1 if it fails); `runs` prints the latest runs and follows a running one."""
    from cli import connectors

    settings = services.resolve(settings)
    if args.action == "sync":
        if args.backfill_days is not None and not 1 <= args.backfill_days <= 365:
            raise UsageError("--backfill-days must be 1-365")
        run_id = connectors.queue_sync(settings, args.connector_id, backfill_days=args.backfill_days)
        print(f"queued {run_id}", flush=True)
        if args.no_follow:
            return 0
        finished = connectors.follow(settings, run_id)
        return 0 if finished is not None and finished.status.value == "succeeded" else 1
    listed = connectors.runs(settings, args.connector_id, args.limit)
    print(connectors.table(listed), flush=True)
    active = next((run for run in listed if run.status.value in ("queued", "running")), None)
    if active is not None and not args.no_follow:
        connectors.follow(settings, active.id)
    return 0


def _test_services(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    """Prints `export` lines for the shell to eval; everything else goes to stderr."""
    if args.action == "start":
        for line in services.start_test_services(settings, environ):
            print(line)
    else:
        services.stop_test_services(settings)
    return 0


def _projection_name(name: str | None, known: Mapping[str, object]) -> str:
    if name not in known:
        raise UsageError(f"name one of the read models: {', '.join(sorted(known))}")
    assert name is not None
    return name


def _banner(requested: Settings, local: Settings) -> str:
    api = f"http://localhost:{local.port}"
    cli = _cli_path()
    postgres = "from DATABASE_URL" if requested.database_url else "embedded"
    nats = "from NATS_URL" if requested.nats_url else f"embedded at {local.nats_url}"
    token = f"{cli} token --email you@example.com"
    return (
        f"\nCauseloop API      {api}/v1\n"
        f"  API explorer     {api}/docs\n"
        f"  get a token      {token}\n"
        f'  try it           curl -H "Authorization: Bearer $({token})" {api}/v1/issues\n'
        f"  Postgres         {postgres}\n"
        f"  NATS JetStream   {nats}\n"
        f"  data folder      {services.data_dir(local)} (kept between runs)\n"
        "  stop             Ctrl-C\n"
    )


def _cli_path() -> str:
    """How to call this same command from the repo root: `.venv/bin/causeloop` when not on PATH."""
    invoked = sys.argv[0]
    if os.sep in invoked:
        relative = os.path.relpath(invoked)
        return relative if not relative.startswith("..") else invoked
    return "causeloop"


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
