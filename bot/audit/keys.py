"""The Ed25519 key that signs audit checkpoints. It never lives in the database it vouches for:
production takes it from OPSBOT_AUDIT_SIGNING_KEY; development keeps a generated one beside the
database file (mode 0600)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.signing import parse_private_key

KEY_FILE_SUFFIX = ".audit-signing-key"
NO_FILE_KEY = Path("opsbot" + KEY_FILE_SUFFIX)  # when the database is not a file (PostgreSQL in development)


def key_path_for(database_url: str) -> Path:
    """Where development keeps its generated key: beside the SQLite file, else in the working directory."""
    prefix = "sqlite:///"
    path = database_url[len(prefix) :] if database_url.startswith(prefix) else ""
    if not path or path.startswith(":memory:"):
        return NO_FILE_KEY
    return Path(path.split("?", 1)[0] + KEY_FILE_SUFFIX)


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """Development's key: read it, or generate it once (readable by its owner only). Replicas starting
    together agree on one key: the file appears whole or not at all (a hard link of a finished file)."""
    try:
        return parse_private_key(path.read_text())
    except FileNotFoundError:
        pass
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    try:
        os.link(staged, path)
    except FileExistsError:  # another process made it first: use theirs
        return parse_private_key(path.read_text())
    finally:
        staged.unlink()
    return key


def load_existing(path: Path) -> Ed25519PrivateKey | None:
    return parse_private_key(path.read_text()) if path.exists() else None


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode()


def signature_valid(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def configured_key(key_text: str | None, database_url: str, *, create: bool) -> Ed25519PrivateKey | None:
    """OPSBOT_AUDIT_SIGNING_KEY when set; else development's file beside the database (made when `create`)."""
    if key_text:
        return parse_private_key(key_text)
    path = key_path_for(database_url)
    return load_or_create(path) if create else load_existing(path)
