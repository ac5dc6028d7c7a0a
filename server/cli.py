"""The ``agentgql`` command: serve, daemon, migrate, createuser, seed, export-schema,
explain-query."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import sys
from pathlib import Path

from server.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in (
            ("host", getattr(args, "host", None)),
            ("port", getattr(args, "port", None)),
            ("data_dir", getattr(args, "data_dir", None)),
        )
        if value is not None
    }
    return Settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.logs import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings, migrate=args.migrate, run_daemon=not args.no_daemon)
    where = "embedded PostgreSQL" if settings.embedded else "DATABASE_URL"
    print(
        f"agentgql: GraphiQL at http://{settings.host}:{settings.port}/graphql ({where})",
        file=sys.stderr,
        flush=True,
    )
    # Long-lived startup objects (schema, compiled plans, modules) never become
    # garbage: keep them out of every collection, and collect young objects less
    # eagerly (a response allocates thousands of short-lived dicts).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_ping_interval=20,
        # Frames are small JSON deltas: compressing each costs more CPU than it saves.
        ws_per_message_deflate=False,
        proxy_headers=True,
    )
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    """Claim and run chats without serving HTTP (scaled-out workers)."""
    import signal

    from daemon.workspace_backend import LocalWorkspaceBackend
    from db.secret_box import SecretBox
    from events.hub import EventHub
    from server.app import make_daemon
    from server.database import database
    from server.logs import configure_logging

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with database(settings):
            hub = EventHub(settings.broadcast_url)
            await hub.connect()
            secrets = SecretBox(settings.resolved_secret_key())
            backend = LocalWorkspaceBackend(settings.resolved_workspaces_dir())
            daemon = make_daemon(settings, hub, secrets, backend)
            await daemon.start()
            print(f"agentgql: daemon {daemon.worker_id} running", file=sys.stderr, flush=True)
            try:
                await stop.wait()
            finally:
                await daemon.stop()
                await hub.disconnect()

    asyncio.run(run())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.database import database

    async def run() -> None:
        async with database(_settings(args), migrate=True):
            pass

    asyncio.run(run())
    print("agentgql: database is up to date", file=sys.stderr)
    return 0


def cmd_createuser(args: argparse.Namespace) -> int:
    from db.vocabulary import UserRole
    from resolvers.accounts import create_user
    from resolvers.errors import ApiError
    from server.database import database

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat: "):
            print("agentgql: passwords differ", file=sys.stderr)
            return 2

    async def run() -> None:
        async with database(_settings(args)):
            role = UserRole.ADMIN if args.admin else UserRole.MEMBER
            await create_user(args.username, password, email=args.email, role=role)

    try:
        asyncio.run(run())
    except ApiError as exc:
        print(f"agentgql: {exc.message}", file=sys.stderr)
        return 2
    print(f"agentgql: created {args.username}", file=sys.stderr)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    import time

    from db.seed import seed_chats, seed_costed_history
    from server.database import database

    async def run() -> int:
        async with database(_settings(args)) as db:
            started = time.perf_counter()
            if args.costed:
                result = await seed_costed_history(
                    db.url, args.owner, args.chats, args.messages, days=args.days
                )
            else:
                result = await seed_chats(db.url, args.owner, args.chats, args.messages)
            elapsed = time.perf_counter() - started
        print(
            f"agentgql: seeded {len(result.chat_ids)} chats, {result.messages} messages "
            f"for {args.owner} in {elapsed:.1f}s",
            file=sys.stderr,
        )
        return 0

    try:
        return asyncio.run(run())
    except (LookupError, ValueError) as exc:
        print(f"agentgql: {exc.args[0]}", file=sys.stderr)
        return 2


def cmd_export_schema(args: argparse.Namespace) -> int:
    from schema.build import export_sdl

    sys.stdout.write(export_sdl().rstrip("\n") + "\n")
    return 0


def cmd_explain_query(args: argparse.Namespace) -> int:
    """The compiled plan and generated Python for a query document (or why it
    is left to graphql-core)."""
    from graphql import GraphQLError, parse, validate

    from schema.build import build_schema
    from schema.engine.executor import compile_query
    from schema.engine.plan import Fallback, describe

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    schema = build_schema()._schema
    try:
        document = parse(text)
    except GraphQLError as exc:
        sys.stderr.write(f"does not parse: {exc}\n")
        return 1
    invalid = validate(schema, document)
    if invalid:
        sys.stderr.write("".join(f"invalid: {error.message}\n" for error in invalid))
        return 1
    try:
        compiled = compile_query(schema, document, args.operation)
    except Fallback as reason:
        sys.stdout.write(f"not compiled, left to graphql-core: {reason}\n")
        return 0
    name = compiled.operation.name.value if compiled.operation.name else "(anonymous)"
    plan = "\n".join(describe(compiled.root))
    sys.stdout.write(f"# plan of query {name}\n{plan}\n\n# generated source\n")
    sys.stdout.write(compiled.source.rstrip("\n") + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentgql", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_place(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", type=Path, help="embedded database and secret key")
        return p

    serve = with_place(sub.add_parser("serve", help="run the API server"))
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--migrate", action="store_true", help="apply pending migrations to DATABASE_URL first"
    )
    serve.add_argument(
        "--no-daemon", action="store_true", help="serve only; run `agentgql daemon` elsewhere"
    )
    serve.set_defaults(func=cmd_serve)

    daemon = with_place(sub.add_parser("daemon", help="run the chat daemon alone"))
    daemon.set_defaults(func=cmd_daemon)

    migrate = with_place(sub.add_parser("migrate", help="apply pending database migrations"))
    migrate.set_defaults(func=cmd_migrate)

    createuser = with_place(sub.add_parser("createuser", help="create a user account"))
    createuser.add_argument("username")
    createuser.add_argument("--admin", action="store_true", help="give the ADMIN role")
    createuser.add_argument("--email")
    createuser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    createuser.set_defaults(func=cmd_createuser)

    seed = with_place(sub.add_parser("seed", help="add demo chats full of messages"))
    seed.add_argument("--owner", required=True, help="an existing username")
    seed.add_argument("--chats", type=int, default=10)
    seed.add_argument("--messages", type=int, default=100, help="messages per chat")
    seed.add_argument(
        "--costed",
        action="store_true",
        help="costed history: assistant messages with usage, prices and cost, and the "
        "spend rollups, spread over the last --days days",
    )
    seed.add_argument("--days", type=int, default=365, help="with --costed: days of history")
    seed.set_defaults(func=cmd_seed)

    export = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export.set_defaults(func=cmd_export_schema)

    explain = sub.add_parser(
        "explain-query", help="print a query's compiled plan and generated Python"
    )
    explain.add_argument("file", help="a file with the GraphQL document, - for stdin")
    explain.add_argument("--operation", default=None, help="the operation's name, if several")
    explain.set_defaults(func=cmd_explain_query)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
