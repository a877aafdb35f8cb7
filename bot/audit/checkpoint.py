"""Signed checkpoints of the audit chain's head, and the ways they are written down outside the
database: a JSON line (structured log, `opsbot audit checkpoint`, exports) and a compact line on
the outcome message in the channel. Pure: no database, no Slack."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.audit import keys as audit_keys

# Domain-separates these signatures from anything else the key might ever sign.
SIGNED_PREFIX = b"opsbot-audit-checkpoint/v1\n"
SHORT_HASH = 16  # hex characters shown in the channel: enough that a forger cannot search for a match
LOG_MARKER = "audit checkpoint "
COMPACT = re.compile(r"audit #(?P<seq>\d+) · (?P<hash>[0-9a-f]{8,64})…?")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    replica: str
    key_id: str = ""
    signature: str = ""

    def message(self) -> bytes:
        body = {
            "at": self.at.isoformat(timespec="microseconds"),
            "hash": self.hash,
            "replica": self.replica,
            "seq": self.seq,
        }
        return SIGNED_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at.isoformat(timespec="microseconds"),
            "replica": self.replica,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    def line(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True)

    def compact(self) -> str:
        """The channel's context line, e.g. "audit #1234 · 9f3a…, signed"."""
        return f"audit #{self.seq} · {self.hash[:SHORT_HASH]}…, signed"

    def named(self) -> str:
        when = f"{self.at:%Y-%m-%dT%H:%M:%SZ}"
        return f"checkpoint #{self.seq} · {self.hash[:SHORT_HASH]}… (signed {when} by {self.replica})"


def signed(key: Ed25519PrivateKey, *, seq: int, hash_: str, at: datetime, replica: str) -> Checkpoint:
    unsigned = Checkpoint(seq, hash_, at, replica, audit_keys.key_id(key.public_key()))
    return Checkpoint(seq, hash_, at, replica, unsigned.key_id, audit_keys.sign(key, unsigned.message()))


def signature_problem(checkpoint: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> str:
    """Empty when a known key signed it; why not otherwise."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"signed by key {checkpoint.key_id or '(none)'}, which is not one of the public keys given"
    if not audit_keys.signature_valid(key, checkpoint.message(), checkpoint.signature):
        return "its signature does not verify: the checkpoint was altered or forged"
    return ""


def from_json(data: dict[str, Any]) -> Checkpoint:
    at = datetime.fromisoformat(str(data["at"]))
    return Checkpoint(
        int(data["seq"]),
        str(data["hash"]),
        at,
        str(data["replica"]),
        str(data.get("key_id", "")),
        str(data.get("signature", "")),
    )


@dataclass(frozen=True)
class Witnessed:
    """One checkpoint as a witness holds it: whole and signed, or as the channel's short hash."""

    seq: int
    hash: str  # the whole hash, or the prefix the compact line shows
    source: str
    checkpoint: Checkpoint | None = None

    def named(self) -> str:
        if self.checkpoint is not None:
            return f"{self.checkpoint.named()}, {self.source}"
        return f"checkpoint #{self.seq} · {self.hash}… (unsigned short form), {self.source}"


def parse_witness_line(line: str, source: str) -> Witnessed | None:
    """A checkpoint JSON line, a structured log line carrying one, or the channel's compact line.
    None for lines that hold no checkpoint (other log lines); ValueError for a damaged one."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("msg"), str):  # a structured log line
            msg = data["msg"]
            return parse_witness_line(msg[len(LOG_MARKER) :], source) if msg.startswith(LOG_MARKER) else None
        if isinstance(data, dict) and isinstance(data.get("checkpoint"), dict):  # an export's trailer line
            data = data["checkpoint"]
        elif not isinstance(data, dict) or "signature" not in data:  # an exported event, or other JSON
            return None
        try:
            checkpoint = from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: not a checkpoint ({type(exc).__name__}: {exc})") from None
        return Witnessed(checkpoint.seq, checkpoint.hash, source, checkpoint)
    match = COMPACT.search(text)
    if match is None:
        return None
    return Witnessed(int(match["seq"]), match["hash"], source)
