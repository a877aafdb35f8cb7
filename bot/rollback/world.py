"""What a rollback plan is built from: the backend's health and GitHub's production deployments.

Read-only; called when a rollback is requested and again when it is approved (bot.rollback.plan
compares the two). Errors are the clients' typed errors (BackendError, GitHubError).
"""

from __future__ import annotations

from datetime import datetime

from bot.clients.backend import TradingBackend
from bot.clients.github import Deployment, GitHub, same_sha
from bot.rollback.plan import SOURCE_DEPLOYMENT, SOURCE_EXPLICIT, Observation, Target

ENVIRONMENT = "production"
MAX_LOOKUPS = 20  # deployments whose statuses are read to confirm an explicit `--to` sha


def observe(backend: TradingBackend, github: GitHub, *, request_id: str, to: str | None) -> Observation:
    health = backend.health(request_id=request_id).data
    deployments = github.deployments(ENVIRONMENT)
    return Observation(
        deployed=health.version,
        health_status=health.status,
        surfaces=dict(health.surfaces),
        release_started_at=_release_start(deployments, health.version),
        target=_explicit(github, deployments, to) if to else _newest_other(github, health.version),
    )


def _release_start(deployments: list[Deployment], deployed: str) -> datetime | None:
    """When the deployed version first went to production (oldest deployment of its sha), if GitHub knows."""
    mine = [d.created_at for d in deployments if same_sha(d.sha, deployed)]
    return min(mine) if mine else None


def _newest_other(github: GitHub, deployed: str) -> Target | None:
    found = github.latest_successful_deployment(ENVIRONMENT, exclude_sha=deployed)
    return Target(found.sha, SOURCE_DEPLOYMENT, found.id, found.created_at) if found else None


def _explicit(github: GitHub, deployments: list[Deployment], to: str) -> Target:
    """`--to <sha>`: the operator's choice stands; the plan says whether it ever deployed successfully."""
    for deployment in [d for d in deployments if same_sha(d.sha, to)][:MAX_LOOKUPS]:
        if any(s.state == "success" for s in github.deployment_statuses(deployment.id)):
            return Target(
                deployment.sha if len(deployment.sha) > len(to) else to,
                SOURCE_EXPLICIT,
                deployment.id,
                deployment.created_at,
            )
    return Target(to, SOURCE_EXPLICIT)
