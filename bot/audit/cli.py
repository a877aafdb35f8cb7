"""`opsbot audit verify|export|checkpoint|public-key`: what an operator, a cron and an auditor run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from bot.audit import checkpointer
from bot.audit import keys as audit_keys
from bot.audit.checkpoint import Checkpoint, Witnessed
from bot.audit.log import AuditLog, export_lines
from bot.audit.verify import Report, check_checkpoints, export_rows, read_witness, summary, walk
from bot.ids import default_replica
from bot.settings import Settings
from bot.signing import AuditKeyError, parse_public_key
from bot.storage.db import make_engine


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="check the hash chain and its signed checkpoints; exit 0 when intact")
    verify.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="FILE",
        help="checkpoints kept outside the database, one a line ('-': stdin); repeatable",
    )
    verify.add_argument("--export", metavar="FILE", help="verify an exported JSONL file instead of the database")
    verify.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="KEY",
        help="Ed25519 public key (file, PEM or base64) the checkpoints must be signed with; "
        "repeatable (key rotation); default: the configured signing key's",
    )
    export = audit.add_parser("export", help="one event per line to stdout (JSONL ends with the signed checkpoints)")
    export.add_argument("--since", type=iso_time, default=None, help="ISO time, e.g. 2026-11-25T10:00:00Z")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    audit.add_parser("checkpoint", help="sign the chain's head if it moved; print the latest signed checkpoint")
    audit.add_parser("public-key", help="print the public key that verifies the checkpoints (PEM)")


def iso_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _run(args, settings)
    except (AuditKeyError, ValueError, OSError) as exc:
        print(f"opsbot audit {args.audit_command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.audit_command == "verify" and args.export:
        return _verify_export(Path(args.export), _keys(args, settings), _witnesses(args.witness))
    key = _signing_key(settings)
    if args.audit_command == "public-key":
        if key is None:
            print(
                "no audit signing key: set OPSBOT_AUDIT_SIGNING_KEY (development makes one on first serve)",
                file=sys.stderr,
            )
            return 2
        sys.stdout.write(audit_keys.public_pem(key.public_key()))
        return 0
    engine = make_engine(settings.database_url)
    if args.audit_command == "checkpoint":
        return _checkpoint(engine, key)
    audit = AuditLog(engine, replica=default_replica())
    if args.audit_command == "export":
        trailer = ('{"checkpoint": ' + c.line() + "}" for c in checkpointer.stored(engine))
        for line in export_lines(audit.table_rows(since=args.since), args.format, trailer):
            sys.stdout.write(line + "\n")
        return 0
    report, newest = check_store(engine, _witnesses(args.witness), _keys(args, settings))
    return _tell(report, "audit chain", newest=newest)


def check_store(engine: Engine, witnessed: list[Witnessed], keys: dict[str, Ed25519PublicKey]) -> tuple[Report, int]:
    """The chain in the database against its stored checkpoints and `witnessed` ones; and the newest
    stored checkpoint's sequence."""
    stored = [Witnessed(c.seq, c.hash, "stored in the database", c) for c in checkpointer.stored(engine)]
    everything = [*stored, *witnessed]
    report = Report()
    rows = AuditLog(engine, replica=default_replica()).chain_rows()
    found = walk(rows, {w.seq for w in everything}, report)
    check_checkpoints(everything, found, report, keys)
    return report, max((w.seq for w in stored), default=0)


def _signing_key(settings: Settings) -> Ed25519PrivateKey | None:
    text = settings.audit_signing_key.get_secret_value() if settings.audit_signing_key else None
    return audit_keys.configured_key(text, settings.database_url, create=False)


def _keys(args: argparse.Namespace, settings: Settings) -> dict[str, Ed25519PublicKey]:
    given = [parse_public_key(text) for text in args.public_key]
    if not given and (own := _signing_key(settings)) is not None:
        given = [own.public_key()]
    return {audit_keys.key_id(k): k for k in given}


def _witnesses(names: Iterable[str]) -> list[Witnessed]:
    found: list[Witnessed] = []
    for name in names:
        with _opened(name) as lines:
            found.extend(read_witness(lines, "stdin" if name == "-" else name))
    return found


@contextmanager
def _opened(name: str) -> Iterator[IO[str]]:
    if name == "-":
        yield sys.stdin
        return
    with open(name, encoding="utf-8") as handle:
        yield handle


def _verify_export(path: Path, keys: dict[str, Ed25519PublicKey], witnessed: list[Witnessed]) -> int:
    if not keys:
        print(
            "opsbot audit verify --export needs --public-key KEY: an export proves nothing without it", file=sys.stderr
        )
        return 2
    with path.open(encoding="utf-8") as first_pass:  # the trailer first, so the events stream after it
        exported = [w for w in read_witness(first_pass, str(path)) if w.checkpoint is not None]
    report = Report()
    with path.open(encoding="utf-8") as second_pass:
        found = walk(export_rows(second_pass), {w.seq for w in [*exported, *witnessed]}, report)
    if not exported:
        report.problems.append("UNSIGNED: the export carries no signed checkpoint, so nothing vouches for it")
    check_checkpoints([*exported, *witnessed], found, report, keys)
    if report.first_seq > 1:
        report.notes.append(f"the export starts at seq {report.first_seq}: earlier events are not in it")
    return _tell(report, f"export {path}", newest=max((w.seq for w in exported), default=0))


def _tell(report: Report, what: str, *, newest: int) -> int:
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for line in report_lines(report, what, newest=newest):
        print(line, file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def report_lines(report: Report, what: str, *, newest: int) -> list[str]:
    """What `opsbot audit verify` says: one line when intact, else one line per problem."""
    if report.ok:
        line = summary(report, what=what)
        if report.head_seq > newest:
            line += f"; {report.head_seq - newest} newest event(s) not yet covered by a signed checkpoint"
        return [line]
    return [f"{what} {problem}" for problem in ([report.broken] if report.broken else []) + report.problems]


def _checkpoint(engine: Engine, key: Ed25519PrivateKey | None) -> int:
    newest: Checkpoint | None
    if key is not None:
        newest = checkpointer.Checkpointer(engine, key, replica=f"cli:{default_replica()}").sign_head()
    else:
        newest = checkpointer.latest(engine)
    if newest is None:
        print("no signed checkpoint yet: the audit log is empty", file=sys.stderr)
        return 1
    print(newest.line())
    return 0
