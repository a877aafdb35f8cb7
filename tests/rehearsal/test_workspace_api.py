"""The local workspace's JSON API over the real bot: commands, clicks, ephemerals, drills, restarts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rehearsal.workspace.drills import FAILING_CHECK
from rehearsal.workspace.world import COSMOS_DATABASE, DEPLOYED
from tests.support.workspace import (
    HALT_A,
    HALT_B,
    OPERATOR,
    Running,
    eventually,
    everything,
    need_cosmos,
    running_workspace,
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_workspace(tmp_path_factory.mktemp("workspace")) as running:
        yield running


@pytest.fixture(autouse=True)
def drills_off(ws: Running) -> Iterator[None]:
    yield
    ws.session.drills.all_off()


def test_a_command_posts_the_request_and_a_click_updates_it(ws: Running) -> None:
    ws.command(OPERATOR, "/halt tenant:api-one api test of the request path")
    request = ws.find(HALT_A, "api test of the request path", ephemeral=False)
    assert "Halt trading: tenant:api-one" in everything(request)
    assert ws.click(HALT_A, request).status_code == 200
    done = ws.find(HALT_A, "Halt trading: tenant:api-one (executed)")
    assert done["ts"] == request["ts"] and done["edited"]
    assert "Approved by <@UHALTA>" in everything(done)
    assert not any(b["type"] == "actions" for b in done["blocks"])  # the buttons are gone
    scopes = ws.session.world.stack.backend.control()["scopes"]
    assert any(s["scope"] == "tenant:api-one" and s["disabled"] for s in scopes)


def test_an_ephemeral_is_shown_only_to_its_person(ws: Running) -> None:
    ws.command(OPERATOR, "/halt status")
    status = ws.find(OPERATOR, "Control revision", ephemeral=True)
    assert status["user"] == "UBOT"
    assert all(m["ts"] != status["ts"] for m in ws.messages(HALT_B))
    echo = next(m for m in ws.messages(OPERATOR) if m["kind"] == "command" and m["text"] == "/halt status")
    assert all(m["ts"] != echo["ts"] for m in ws.messages(HALT_B))


def test_the_acks_own_answer_is_an_ephemeral_right_after_the_command(ws: Running) -> None:
    ws.command(OPERATOR, "/halt help")
    ws.find(OPERATOR, "Here is how `/halt` works", ephemeral=True)
    mine = ws.messages(OPERATOR)
    at = max(i for i, m in enumerate(mine) if m["kind"] == "command" and m["text"] == "/halt help")
    after = mine[at + 1]
    assert after["ephemeral"] and after["user"] == "UBOT" and "Here is how `/halt` works" in after["text"]


def test_self_approval_is_refused_to_the_requester_only(ws: Running) -> None:
    ws.command(OPERATOR, "/halt tenant:api-two self approval attempt")
    request = ws.find(OPERATOR, "self approval attempt", ephemeral=False)
    ws.click(OPERATOR, request)
    refusal = ws.find(OPERATOR, "you requested this action", ephemeral=True)
    assert all(m["ts"] != refusal["ts"] for m in ws.messages(HALT_A))
    assert "pending" in ws.find(OPERATOR, "self approval attempt", ephemeral=False)["text"]


def test_the_page_refuses_what_slack_would_not_send(ws: Running) -> None:
    assert ws.post("/api/command", {"user": "UNOBODY", "text": "/halt status"}).status_code == 400
    assert "not a command" in ws.post("/api/command", {"user": OPERATOR, "text": "/deploy now"}).json()["error"]
    bad_click = ws.post(
        "/api/click", {"user": HALT_A, "action_id": "approve", "value": "apr_forged", "message_ts": "1.000001"}
    )
    assert bad_click.status_code == 400
    form = httpx.post(ws.url + "/api/command", data={"user": OPERATOR, "text": "/halt status"})
    assert form.status_code == 400  # JSON only: a cross-site form post cannot drive the rehearsal
    foreign = httpx.get(ws.url + "/api/state", headers={"Host": "evil.example:80"})
    assert foreign.status_code == 403
    assert httpx.get(ws.url + "/static/../server.py").status_code == 404
    assert ws.post("/api/drill", {"name": "meteor-strike", "on": True}).status_code == 400


def test_the_page_and_its_scripts_are_served(ws: Running) -> None:
    page = httpx.get(ws.url + "/")
    assert page.status_code == 200 and "Local workspace" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "blocks.js", "panels.js", "app.css"):
        assert httpx.get(f"{ws.url}/static/{name}").status_code == 200


def test_backend_drills_change_what_the_bot_meets(ws: Running) -> None:
    backend = ws.session.world.stack.backend
    ws.drill("backend-failing", True)
    assert httpx.get(backend.url + "/api/health").status_code == 503
    ws.command(OPERATOR, "/halt status")
    ws.find(OPERATOR, "503", ephemeral=True)
    ws.drill("backend-failing", False)
    ws.drill("backend-slow", True)
    assert backend.faults.latency_s > 1
    ws.drill("halt-not-applied", True)
    assert backend.faults.halt_not_applied
    on = {d["name"] for d in ws.state()["drills"] if d["on"]}
    assert on == {"backend-slow", "halt-not-applied"}


def test_ci_and_workflow_drills_change_github(ws: Running) -> None:
    github = ws.session.world.stack.github
    ws.drill("ci-check-failing", True)
    conclusion = {
        r["name"]: r["conclusion"]
        for r in httpx.get(
            f"{github.url}/repos/{github.repository}/commits/{DEPLOYED}/check-runs",
            headers={"Authorization": "Bearer ghp_local_stand_in"},
        ).json()["check_runs"]
    }
    assert conclusion[FAILING_CHECK] == "failure"
    ws.drill("ci-check-failing", False)
    ws.drill("rollback-workflow-failing", True)
    assert github.faults.fail_next_run


def test_cosmos_drills(ws: Running) -> None:
    need_cosmos(ws)
    world = ws.session.world
    assert world.forwarder is not None
    ws.drill("cosmos-unreachable", True)
    with socket.create_connection(("127.0.0.1", world.forwarder.port), timeout=2) as sock:
        sock.settimeout(2)
        assert sock.recv(1) == b""  # closed at once
    ws.drill("cosmos-unreachable", False)
    ws.drill("control-drift", True)
    ws.command(OPERATOR, "/halt status")
    ws.find(OPERATOR, "runtime control drift", ephemeral=True)
    container = (
        world.cosmos.client()
        .get_database_client(COSMOS_DATABASE)
        .get_container_client(  # type: ignore[union-attr]
            "trading-control"
        )
    )
    backend_halted = world.stack.backend.control()["global"]["halted"]
    assert container.read_item("global", partition_key="global")["halted"] is not backend_halted


def test_a_scenario_sets_up_the_stand_ins(ws: Running) -> None:
    response = ws.post("/api/scenario", {"name": "rollback-under-load"})
    assert response.status_code == 200, response.text
    status = eventually(lambda: (s := ws.state()["scenario"]) and s["done"] and s, what="the scenario to finish")
    assert status["error"] is None and status["step"] == status["steps"]
    backend = ws.session.world.stack.backend
    assert backend.faults.latency_s > 1 and backend.health_status == "degraded"
    assert ws.post("/api/scenario", {"name": "no-such"}).status_code == 400


def test_state_survives_a_restart(tmp_path: Path) -> None:
    with running_workspace(tmp_path, use_cosmos=False) as first:
        first.command(OPERATOR, "/halt global restart rehearsal")
        request = first.find(HALT_A, "restart rehearsal", ephemeral=False)
        first.drill("backend-slow", True)
    with running_workspace(tmp_path, use_cosmos=False) as second:
        again = second.find(HALT_A, "restart rehearsal", ephemeral=False)
        assert again["ts"] == request["ts"]
        assert second.click(HALT_A, again).status_code == 200  # the pending approval still works
        second.find(HALT_A, "Approved by <@UHALTA>")
        eventually(lambda: second.session.world.stack.backend.control()["global"]["halted"], what="the halt")
        second.find(HALT_A, "(executed)")
        assert second.session.drills.is_on("backend-slow")
        assert any(m["text"] == "/halt global restart rehearsal" for m in second.messages(OPERATOR))
    with running_workspace(tmp_path, use_cosmos=False) as third:
        assert third.session.world.stack.backend.control()["global"]["halted"]
        assert "reset: opsbot workspace --reset" in third.state()["world"]["state"]
