"""Child processes the local stand-ins run (the Cosmos-protocol server, Prometheus)."""

from __future__ import annotations

import subprocess
from typing import Any


def stop(process: subprocess.Popen[Any], *, grace_s: float = 5.0) -> None:
    """Ask it to end, wait `grace_s`, then kill: a stand-in must never outlive the workspace or a test."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
