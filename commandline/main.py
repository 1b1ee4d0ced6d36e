"""The `registry` command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from commandline.store_checks import PortBusy, UnusableStore, describe, require_existing, require_free_port
from events import parse_day, parse_instant
from registry.errors import RegistryError
from registry.settings import ConfigError, Settings


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings, read once from the environment; `--database` wins over REGISTRY_DATABASE."""
    try:
        settings = Settings.from_env()
        if getattr(args, "database", None):
            settings = settings.replace(database=args.database)
        settings.store  # noqa: B018 - a bad database URL is a usage error, found here
    except ConfigError as error:
        raise CommandError(str(error)) from error
    return settings


def _registry(args: argparse.Namespace, upgrade: bool = False, any_layout: bool = False,
              create: bool = False) -> Any:
    """The registry over the store the arguments name. With `upgrade`, its views are brought to
    this version's layout and up to the log first (a rebuild when the store is older); else
    a store whose views are in an older layout is refused, unless `any_layout`. A store that
    does not exist is refused (UnusableStore) unless `create`."""
    from registry.bootstrap import bootstrap, require_current
    from registry.bootstrap import upgrade as upgrade_views

    settings = settings_of(args)
    if not create:
        require_existing(settings.store)
    if settings.store.engine == "sqlite":
        folder = os.path.dirname(settings.store.sqlite_path)
        if folder:
            os.makedirs(folder, exist_ok=True)
    registry = bootstrap(settings)
    if upgrade:
        upgrade_views(registry)
    elif not any_layout:
        require_current(registry)
    return registry


def cmd_serve(args: argparse.Namespace) -> int:
    from commandline.serve import serve

    require_free_port(args.host, args.port)  # a busy port fails before the success line
    registry = _registry(args, upgrade=True, create=True)
    seeded = 0
    if registry.reader.head()["position"] == 0:
        from registry.seed import seed

        seeded = seed(registry)
    token = None if registry.tokens.has_admin() else registry.tokens.create(_free_name(registry, "admin"), "admin")
    registry.close()
    url = f"http://{args.host}:{args.port}"
    print(f"Cooperation Registry at {url}  (API docs: {url}/docs, OpenAPI: {url}/openapi.json)")
    if seeded:
        print(f"Seeded the store with the migration timeline ({seeded} writes).")
    if token:
        print(f"First admin token (shown once): {token}")
    else:
        print("Admin tokens exist already; make another with: registry token create --name NAME --role admin")
    sys.stdout.flush()
    settings = registry.settings
    serve(settings, args.host, args.port, args.workers or settings.workers, args.threads or settings.threads)
    return 0


def _free_name(registry: Any, base: str) -> str:
    """`base`, or `base-2`, `base-3`… if tokens (perhaps revoked) hold the name."""
    taken = {token["name"] for token in registry.tokens.list()}
    return next(name for name in (base, *(f"{base}-{n}" for n in range(2, 10_000))) if name not in taken)


def cmd_seed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from registry.seed import WRITES, seed

    registry = _registry(args, upgrade=True, create=True)
    with tqdm(total=WRITES, desc="seed", unit="write", file=sys.stderr, disable=quiet(args)) as bar:
        seed(registry, progress=bar.update)
    print(f"seeded: log at position {registry.reader.head()['position']}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    registry = _registry(args, any_layout=True, create=True)
    if args.action == "create":
        print(registry.tokens.create(args.name, args.role))
    elif args.action == "list":
        for token in registry.tokens.list():
            state = f"revoked {token['revoked_at']}" if token["revoked_at"] else "active"
            print(f"{token['name']}\t{token['role']}\t{token['created_at']}\t{state}")
    else:
        registry.tokens.revoke(args.name)
        print(f"revoked {args.name}")
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    try:
        as_of = parse_day(args.as_of) if args.as_of else None
        known_at = parse_instant(args.known_at) if args.known_at else None
    except ValueError as error:
        raise CommandError(f"--as-of/--known-at: {error}") from error
    registry = _registry(args, upgrade=True)
    json.dump(registry.reader.snapshot(as_of, known_at), sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    registry = _registry(args, any_layout=True)
    logged, _ = registry.reader.lag()
    with tqdm(total=logged, desc="rebuild", unit="event", file=sys.stderr, disable=quiet(args)) as bar:
        version, position = registry.projection.rebuild(progress=bar.update, workers=args.workers)
    print(f"rebuilt views from {position} events; projection version {version} is active")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    registry = _registry(args, upgrade=True)
    position = registry.reader.lag()[1]
    if args.once:
        print(f"projected to position {position}")
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # stop cleanly: a delivery under way is finished and stored
        signal.signal(signum, lambda *_: stop.set())
    delivery = None
    if not args.no_webhooks:
        from registry.feeds.delivery import DeliverySettings, WebhookDelivery

        delivery = WebhookDelivery(registry.database, registry.feed, DeliverySettings.of(registry.settings)).start()
    print(f"projector at position {position}, following the log every {args.interval}s"
          + ("" if delivery is None else "; delivering webhooks"), file=sys.stderr)
    registry.projection.follow(stop, args.interval)
    if delivery is not None:
        delivery.stop()
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.hash is not None and (args.start is None or not HASH.fullmatch(args.hash)):
        raise CommandError("--hash takes the 64-hex hash of the position given with --from (a kept receipt)")
    start = 1 if args.start is None else args.start
    if start < 1:  # as over HTTP: positions start at 1 (0 is not "the default")
        raise CommandError(f"--from takes a position, 1 or more, not {start}")
    if args.to is not None and args.to < start:
        raise CommandError(f"--to {args.to} is before --from {start}")
    registry = _registry(args)
    head = registry.reader.head()["position"]
    last = head if args.to is None else args.to
    total = last - (1 if args.hash else start) + 1  # with a receipt, the log is checked from 1
    with tqdm(total=max(total, 0), desc="verify", unit="event", file=sys.stderr, disable=quiet(args)) as bar:
        report = registry.auditor.verify(args.start, args.to, args.hash, not args.no_projections, bar.update)
    if report["ok"]:
        print(f"ok: {report['checked']} events verified up to position {last}"
              f" (head hash {report['head']['hash']}); projections {report['projections']}")
        return 0
    bad = report["first_bad"]
    print(f"NOT OK: first bad position {bad['position']}: {bad['reason']}")
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from registry.audit.transfer import export_lines

    if not 0 <= args.after <= MAX_POSITION:  # as over HTTP (400): a position, 0 for the whole log
        raise CommandError(f"--after takes a position from 0 to {MAX_POSITION}, not {args.after}")
    registry = _registry(args, any_layout=True)
    head = registry.reader.head()["position"]
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        with tqdm(total=max(head - args.after, 0), desc="export", unit="event", file=sys.stderr,
                  disable=quiet(args) or not args.output) as bar:
            for line in export_lines(registry.database, args.after, args.source, bar.update):
                out.write(line)
    finally:
        if args.output:
            out.close()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from tqdm import tqdm

    from registry.audit.transfer import check_file, import_lines

    path = args.file
    if path == "-":  # standard input is read twice: keep a copy
        spool = tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False, encoding="utf-8")  # noqa: SIM115
        shutil.copyfileobj(sys.stdin, spool)
        spool.close()
        path = spool.name
    if not os.path.isfile(path):
        raise CommandError(f"no file {path!r}")

    def read() -> Any:
        with open(path, encoding="utf-8") as handle:
            yield from handle

    check_file(read())  # a bad file is refused before the store is even opened
    registry = _registry(args, upgrade=True, create=True)

    with tqdm(desc="import", unit="event", file=sys.stderr, disable=quiet(args)) as bar:
        result = import_lines(registry.store, read, bar.update)
    with tqdm(desc="views", unit="event", file=sys.stderr, disable=quiet(args)) as bar:
        registry.projection.refresh(bar.update)
    print(f"imported {result['written']} events, skipped {result['skipped']} already present")
    return 0


HASH = re.compile(r"[0-9a-f]{64}")
MAX_POSITION = 2**63 - 1  # the store's positions are 64-bit integers (the API's bound too)


def quiet(args: argparse.Namespace) -> bool:
    """No progress bar with --quiet, nor when standard error is not a terminal."""
    return bool(args.quiet) or not sys.stderr.isatty()


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) > 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 64, not {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="registry", description="The Cooperation Registry")
    # --database may come before or after the command (and its action): a later one wins,
    # and none given means $REGISTRY_DATABASE, then var/registry.sqlite.
    help_text = "SQLite path or postgresql:// URL (default: $REGISTRY_DATABASE, var/registry.sqlite)"
    top.add_argument("--database", default=argparse.SUPPRESS, help=help_text)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", default=argparse.SUPPRESS, help=help_text)
    nested = argparse.ArgumentParser(add_help=False)
    nested.add_argument("--database", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="serve the API (seeds an empty store)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, help="worker processes (default: $REGISTRY_WORKERS, 2)")
    serve.add_argument("--threads", type=int, help="threads per worker (default: $REGISTRY_THREADS, 64)")
    serve.set_defaults(run=cmd_serve)

    seed = sub.add_parser("seed", parents=[common], help="load the seed timeline (idempotent)")
    seed.add_argument("--quiet", action="store_true")
    seed.set_defaults(run=cmd_seed)

    token = sub.add_parser("token", parents=[common], help="create, list or revoke API tokens")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[nested])
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=("reader", "editor", "admin"))
    actions.add_parser("list", parents=[nested])
    revoke = actions.add_parser("revoke", parents=[nested])
    revoke.add_argument("name")
    token.set_defaults(run=cmd_token)

    snapshot = sub.add_parser("snapshot", parents=[common], help="the whole registry at a point, as JSON")
    snapshot.add_argument("--as-of", help="valid day YYYY-MM-DD (default today)")
    snapshot.add_argument("--known-at", help="RFC 3339 instant (default now)")
    snapshot.set_defaults(run=cmd_snapshot)

    rebuild = sub.add_parser("rebuild", parents=[common], help="rebuild the views from the log")
    rebuild.add_argument("--quiet", action="store_true")
    rebuild.add_argument("--workers", type=_workers, default=None,
                         help="processes that work out views beside this one (default: one fewer than the cores"
                              " for a long log, none for a short one; 0: none)")
    rebuild.set_defaults(run=cmd_rebuild)

    verify = sub.add_parser("verify", parents=[common], help="audit the log: exit 0 when intact, 1 otherwise")
    verify.add_argument("--from", dest="start", type=int, default=None, help="first position to check (default 1)")
    verify.add_argument("--to", type=int, help="last position to check (default: the head)")
    verify.add_argument("--hash", help="a kept receipt: the hash of position --from; the whole log up to it is checked")
    verify.add_argument("--no-projections", action="store_true", help="skip replaying the log against the views")
    verify.add_argument("--quiet", action="store_true")
    verify.set_defaults(run=cmd_verify)

    export = sub.add_parser("export", parents=[common], help="the log as NDJSON (CloudEvents-compatible)")
    export.add_argument("--after", type=int, default=0, help="export events after this position")
    export.add_argument("--output", "-o", help="a file (default: standard output)")
    export.add_argument("--source", default="urn:cooperation-registry", help="the CloudEvents source")
    export.add_argument("--quiet", action="store_true")
    export.set_defaults(run=cmd_export)

    load = sub.add_parser("import", parents=[common], help="load an export file (idempotent by event id)")
    load.add_argument("file", help="an NDJSON export file, or - for standard input")
    load.add_argument("--quiet", action="store_true")
    load.set_defaults(run=cmd_import)

    project = sub.add_parser("project", parents=[common], help="a projector worker following the log")
    project.add_argument("--interval", type=float, default=1.0)
    project.add_argument("--once", action="store_true", help="catch up once and exit")
    project.add_argument("--no-webhooks", action="store_true", help="do not deliver webhooks in this worker")
    project.set_defaults(run=cmd_project)

    from commandline.audit import install as install_audit  # `audit`, and `verify --file` offline

    install_audit(sub, common, nested)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (CommandError, RegistryError, UnusableStore, PortBusy) as error:
        print(f"registry {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the store could not be reached, and the like
        unusable = describe(error)
        if unusable:
            print(f"registry {args.command}: {unusable}", file=sys.stderr)
            return 2
        print(f"registry {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
