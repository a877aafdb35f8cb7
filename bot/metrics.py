"""Prometheus metrics, one registry per running bot (so tests can build many bots in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter(
            "opsbot_commands_total", "Slash commands handled", ["command", "outcome"], registry=self.registry
        )
        self.approvals = Counter(
            "opsbot_approval_steps_total", "Approval steps recorded", ["action", "step"], registry=self.registry
        )
        self.backend = Histogram(
            "opsbot_backend_seconds", "Trading backend call duration", ["call", "outcome"], registry=self.registry
        )
        self.denied = Counter(
            "opsbot_requests_denied_total",
            "Requests refused before any handler",
            ["reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
