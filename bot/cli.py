"""`opsbot`: serve the bot or rehearse it locally, migrate the store, verify and export the audit log."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy import Engine

from bot import logs
from bot.audit import cli as audit_cli
from bot.audit.cli import add_commands
from bot.runbook.model import RunbookError
from bot.settings import InsecureSettingsError, Settings, describe_refusal
from bot.storage.db import make_engine
from bot.storage.roles import upgrade_command

MISSING_CREDENTIALS = (
    "opsbot serve needs Slack credentials: set SLACK_BOT_TOKEN (xoxb-…) and SLACK_SIGNING_SECRET "
    "(in the environment or in .env; see .env.example). Set SLACK_APP_TOKEN (xapp-…) as well for Socket Mode."
)

NO_REHEARSAL = (
    "The local workspace is not installed: install the rehearsal extra (pip install -e '.[rehearsal]'), "
    "or set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to serve Slack."
)

NO_WORKSPACE_IN_PRODUCTION = (
    "The local workspace never starts in production; to serve Slack set SLACK_BOT_TOKEN (xoxb-…) and "
    "SLACK_SIGNING_SECRET (and SLACK_APP_TOKEN (xapp-…) for Socket Mode)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opsbot", description="Trading ops bot")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the bot (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--threads", type=int, default=16, help="HTTP worker threads")
    serve.add_argument("--socket-mode", action="store_true", help="require Socket Mode (SLACK_APP_TOKEN)")
    run = sub.add_parser(
        "run",
        help="serve Slack when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set; "
        "otherwise the local workspace (a rehearsal channel in the browser)",
    )
    run.add_argument("--host", default="127.0.0.1", help="with Slack credentials only; the workspace is loopback")
    run.add_argument("--port", type=int, default=3000)
    run.add_argument("--threads", type=int, default=16, help="HTTP worker threads (Slack)")
    run.add_argument(
        "--open",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open the workspace in the browser (default: only at a desktop terminal)",
    )
    workspace = sub.add_parser("workspace", help="the local workspace: the real bot against local stand-ins")
    workspace.add_argument("--port", type=int, default=3000, help="loopback port of the page (0: any free one)")
    workspace.add_argument("--reset", action="store_true", help="delete the workspace's SQLite file and state first")
    workspace.add_argument(
        "--open",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open the workspace in the browser (default: only at a desktop terminal)",
    )
    db = sub.add_parser("db", help="store maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply schema migrations")
    add_commands(sub)
    incident = sub.add_parser("incident", help="rollback evidence").add_subparsers(
        dest="incident_command", required=True
    )
    bundle = incident.add_parser("export", help="a rollback's evidence bundle (JSONL) to stdout")
    bundle.add_argument("rollback_id", help="e.g. rb-1a2b3c4d, as /rollback status shows it")
    return parser


def _settings() -> Settings:
    try:
        return Settings()
    except (InsecureSettingsError, ValidationError, SettingsError) as exc:
        print(f"opsbot: configuration refused: {describe_refusal(exc)}", file=sys.stderr)
        raise SystemExit(2) from exc


def _run(args: argparse.Namespace) -> int:
    """`opsbot run` and `opsbot workspace`: Slack when configured, else the local workspace; never in production."""
    try:
        settings = Settings()
    except (InsecureSettingsError, ValidationError, SettingsError) as exc:
        print(
            f"opsbot {args.command}: configuration refused: {describe_refusal(exc)}\n{NO_WORKSPACE_IN_PRODUCTION}",
            file=sys.stderr,
        )
        return 2
    if args.command == "run" and settings.has_slack_credentials:
        from bot.bootstrap import serve

        logs.configure()
        return serve(settings, host=args.host, port=args.port, threads=args.threads)
    if settings.is_production:
        print(f"opsbot {args.command}: OPSBOT_ENV=production. {NO_WORKSPACE_IN_PRODUCTION}", file=sys.stderr)
        return 2
    run_workspace = _rehearsal()
    if run_workspace is None:
        print(NO_REHEARSAL, file=sys.stderr)
        return 2
    return run_workspace(
        settings.database_url, port=args.port, wipe=getattr(args, "reset", False), open_browser=args.open
    )


def _rehearsal() -> Callable[..., int] | None:
    """The local workspace, registered by the rehearsal package; the bot itself never imports it."""
    for entry in entry_points(group="opsbot.rehearsal", name="workspace"):
        try:
            loaded: Callable[..., int] = entry.load()
        except ImportError:  # the rehearsal extra's dependencies are not installed
            return None
        return loaded
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except RunbookError as exc:  # a bad runbook file is the operator's to fix: say what, no traceback
        print(f"opsbot: runbook refused: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    if args.command in ("run", "workspace"):
        return _run(args)
    settings = _settings()
    if args.command == "serve":
        from bot.bootstrap import serve  # heavy imports only when serving

        if not settings.has_slack_credentials:
            print(MISSING_CREDENTIALS, file=sys.stderr)
            return 2
        logs.configure()
        return serve(settings, host=args.host, port=args.port, threads=args.threads, socket_mode=args.socket_mode)
    if args.command == "db":
        return upgrade_command(settings)
    if args.command == "incident":
        return _incident_export(make_engine(settings.database_url), args.rollback_id)
    return audit_cli.run(args, settings)


def _incident_export(engine: Engine, rollback_id: str) -> int:
    from bot.rollback.evidence import stored

    bundle = stored(engine, rollback_id.strip())
    if bundle is None:
        print(
            f"opsbot incident export: no evidence bundle stored for rollback {rollback_id!r} "
            "(see /rollback status for the ids)",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(bundle.content)
    print(f"{bundle.lines} lines, SHA-256 {bundle.sha256} (as recorded in the audit log)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
