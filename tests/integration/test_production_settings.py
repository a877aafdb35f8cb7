"""Production refuses unsafe settings in words that never carry a secret, not even a fragment of one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OPSBOT = Path(sys.executable).with_name("opsbot")
SECRETS = {
    "JWT_SECRET": "jwt-Q7v2LmX9pR4tZ8wK3nB6yH1cF5dS0gA",
    "OPSBOT_CLIENT_SECRET": "cli-T3mN8bV1xZ6kQ9wR2pL5yJ7hG4fD0sC",
    "COSMOS_KEY": "C2x9Lq7Vn4Rt8Wm3Kp6Yb1Hz5Jd0Fs+Gg==",
    "SLACK_SIGNING_SECRET": "sig-Yb1Hz5Jd0Fs7Vn4Rt8Wm3Kp6Q2x9Lq",
    "OPSBOT_AUDIT_SIGNING_KEY": "not-a-key-M3kP6yB1hZ5jD0fS7vN4rT8w",
}


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPSBOT_", "COSMOS_", "JWT_"))}
    env = {
        **base,
        "OPSBOT_ENV": "production",
        "SLACK_BOT_TOKEN": "xoxb-1-2-3",
        "TRADING_API_URL": "http://plain",
        "OPSBOT_DATABASE_URL": "postgresql://bot:pw@127.0.0.1:1/opsbot",
        "COSMOS_ENDPOINT": "https://c:8081",
        "OPSBOT_CLIENT_ID": "opsbot",
        **SECRETS,
        **env,
    }
    return subprocess.run(
        [str(OPSBOT), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env, check=False
    )


def fragments(secret: str, size: int = 5) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.parametrize("args", [("serve", "--port", "0"), ("audit", "verify"), ("db", "upgrade"), ("run",)])
def test_refusals_name_the_settings_and_print_no_part_of_any_secret(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = run(tmp_path, *args)
    shown = done.stdout + done.stderr
    assert done.returncode == 2, shown
    for name in (
        "SLACK_SIGNING_SECRET is not a Slack signing secret",
        "JWT_SECRET is set",
        "OPSBOT_OPERATORS is empty",
        "TRADING_API_URL must be an https:// URL",
        "OPSBOT_AUDIT_SIGNING_KEY is not an Ed25519 private key",
    ):
        assert name in shown, shown
    for secret in SECRETS.values():
        leaked = sorted(f for f in fragments(secret) if f in shown)
        assert not leaked, (secret, leaked)
    assert "Traceback" not in shown and "input_value" not in shown


def test_a_type_error_beside_secrets_echoes_nothing(tmp_path: Path) -> None:
    done = run(tmp_path, "audit", "verify", OPSBOT_APPROVAL_TTL_SECONDS="soon")
    assert done.returncode == 2
    assert "OPSBOT_APPROVAL_TTL_SECONDS" in done.stderr and "soon" not in done.stderr
    for secret in SECRETS.values():
        assert not any(f in done.stderr for f in fragments(secret)), secret
