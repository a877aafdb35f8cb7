"""Ed25519 keys as operators write them (PEM, or the 32-byte seed in base64 or hex): read, or refused
with a message that never contains the key. Used by the settings' production checks and the audit log."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class AuditKeyError(ValueError):
    """A key that cannot be read; the message never contains the key itself."""


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """PEM (PKCS#8), or the 32-byte seed in base64 or hex."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise AuditKeyError("not an Ed25519 key")
            return key
        return Ed25519PrivateKey.from_private_bytes(_seed_bytes(text))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise AuditKeyError(
            f"not an Ed25519 private key (PEM, or 32 bytes in base64 or hex): {type(exc).__name__}"
        ) from None


def _seed_bytes(text: str) -> bytes:
    if len(text) == 64:
        return bytes.fromhex(text)
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("wrong length")
    return raw


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A file holding the key, or the key itself: PEM, or the 32 raw bytes in base64 or hex."""
    text = text.strip()
    candidate = Path(text)
    if not text.startswith("-----BEGIN") and len(text) < 4096 and candidate.is_file():
        text = candidate.read_text().strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise AuditKeyError("not an Ed25519 public key")
            return key
        return Ed25519PublicKey.from_public_bytes(_seed_bytes(text))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise AuditKeyError(
            f"not an Ed25519 public key (PEM, or 32 bytes in base64 or hex): {type(exc).__name__}"
        ) from None
