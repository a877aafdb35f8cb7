"""The JSON documents the simulated GitHub answers with, carrying every field GitHub always sends.

Kept apart from the routing in `rehearsal.sim.github` so the shapes, checked against GitHub's published
REST description in the contract tests, live in one place.
"""

from __future__ import annotations

import hashlib
from typing import Any

Doc = dict[str, Any]
WEB = "https://github.com"


def node_id(kind: str, number: int) -> str:
    return f"{kind}_kw{number:08d}"


def user(api: str, login: str = "github-actions[bot]", user_id: int = 41898282) -> Doc:
    base = f"{api}/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": node_id("U", user_id),
        "type": "Bot",
        "site_admin": False,
        "avatar_url": f"https://avatars.githubusercontent.com/in/{user_id}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": f"{WEB}/apps/{login}",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
    }


_REPO_LINKS = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repository(api: str, full_name: str) -> Doc:
    owner, _, name = full_name.partition("/")
    base = f"{api}/repos/{full_name}"
    repo_id = int(hashlib.sha256(full_name.encode()).hexdigest()[:6], 16)
    return {
        "id": repo_id,
        "node_id": node_id("R", repo_id),
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": user(api, owner, repo_id + 1) | {"type": "Organization"},
        "html_url": f"{WEB}/{full_name}",
        "description": None,
        "fork": False,
        "url": base,
        **{k: base + v for k, v in _REPO_LINKS.items()},
    }


def app(api: str) -> Doc:
    return {
        "id": 15368,
        "node_id": node_id("A", 15368),
        "slug": "github-actions",
        "name": "GitHub Actions",
        "owner": user(api, "github", 9919) | {"type": "Organization"},
        "description": "Automate your workflow",
        "external_url": "https://help.github.com/en/actions",
        "html_url": f"{WEB}/apps/github-actions",
        "created_at": "2018-07-30T09:30:17Z",
        "updated_at": "2024-04-10T20:33:16Z",
        "permissions": {
            "actions": "write",
            "checks": "write",
            "contents": "write",
            "deployments": "write",
            "metadata": "read",
        },
        "events": ["check_run", "check_suite", "deployment", "workflow_dispatch"],
    }


def check_run(
    api: str,
    full_name: str,
    run_id: int,
    sha: str,
    name: str,
    conclusion: str | None,
    started: str,
    completed: str | None,
) -> Doc:
    return {
        "id": run_id,
        "node_id": node_id("CR", run_id),
        "name": name,
        "head_sha": sha,
        "external_id": "",
        "url": f"{api}/repos/{full_name}/check-runs/{run_id}",
        "html_url": f"{WEB}/{full_name}/runs/{run_id}",
        "details_url": f"{WEB}/{full_name}/actions/runs/{run_id}",
        "status": "completed" if conclusion is not None else "in_progress",
        "conclusion": conclusion,
        "started_at": started,
        "completed_at": completed,
        "output": {
            "title": None,
            "summary": None,
            "text": None,
            "annotations_count": 0,
            "annotations_url": f"{api}/repos/{full_name}/check-runs/{run_id}/annotations",
        },
        "check_suite": {"id": run_id},
        "app": app(api),
        "pull_requests": [],
    }


def deployment(
    api: str, full_name: str, deployment_id: int, *, sha: str, ref: str, environment: str, created: str
) -> Doc:
    base = f"{api}/repos/{full_name}/deployments/{deployment_id}"
    return {
        "id": deployment_id,
        "node_id": node_id("DE", deployment_id),
        "sha": sha,
        "ref": ref,
        "task": "deploy",
        "payload": {},
        "original_environment": environment,
        "environment": environment,
        "description": None,
        "creator": user(api),
        "created_at": created,
        "updated_at": created,
        "url": base,
        "statuses_url": f"{base}/statuses",
        "repository_url": f"{api}/repos/{full_name}",
        "transient_environment": False,
        "production_environment": environment == "production",
    }


def deployment_status(
    api: str, full_name: str, deployment_id: int, status_id: int, *, state: str, environment: str, at: str
) -> Doc:
    base = f"{api}/repos/{full_name}/deployments/{deployment_id}"
    return {
        "id": status_id,
        "node_id": node_id("DES", status_id),
        "state": state,
        "creator": user(api),
        "description": "",
        "environment": environment,
        "target_url": "",
        "log_url": "",
        "environment_url": "",
        "created_at": at,
        "updated_at": at,
        "url": f"{base}/statuses/{status_id}",
        "deployment_url": base,
        "repository_url": f"{api}/repos/{full_name}",
    }


def workflow_run(
    api: str, full_name: str, run_id: int, *, workflow: str, title: str, ref: str, number: int, at: str
) -> Doc:
    base = f"{api}/repos/{full_name}/actions/runs/{run_id}"
    head_sha = hashlib.sha256(ref.encode()).hexdigest()[:40]
    workflow_id = int(hashlib.sha256(workflow.encode()).hexdigest()[:6], 16)
    repo = repository(api, full_name)
    return {
        "id": run_id,
        "node_id": node_id("WFR", run_id),
        "name": workflow.rsplit(".", 1)[0],
        "display_title": title,
        "event": "workflow_dispatch",
        "head_branch": ref,
        "head_sha": head_sha,
        "path": f".github/workflows/{workflow}",
        "status": "queued",
        "conclusion": None,
        "run_number": number,
        "run_attempt": 1,
        "workflow_id": workflow_id,
        "created_at": at,
        "updated_at": at,
        "run_started_at": at,
        "url": base,
        "html_url": f"{WEB}/{full_name}/actions/runs/{run_id}",
        "jobs_url": f"{base}/jobs",
        "logs_url": f"{base}/logs",
        "check_suite_url": f"{api}/repos/{full_name}/check-suites/{run_id}",
        "artifacts_url": f"{base}/artifacts",
        "cancel_url": f"{base}/cancel",
        "rerun_url": f"{base}/rerun",
        "workflow_url": f"{api}/repos/{full_name}/actions/workflows/{workflow_id}",
        "pull_requests": [],
        "head_commit": {
            "id": head_sha,
            "tree_id": head_sha[::-1],
            "message": f"Deploy {ref}",
            "timestamp": at,
            "author": {"name": "release", "email": "release@example.com"},
            "committer": {"name": "release", "email": "release@example.com"},
        },
        "repository": repo,
        "head_repository": repo,
        "actor": user(api),
        "triggering_actor": user(api),
    }
