"""Post-cutover monitoring in the local workspace: it runs Debian's Prometheus scraping the simulated
backend every second, so after a cutover advance the "Platform auth failing" drill is alerted in the
channel, with its chart in the alert's thread; without Prometheus the page and the printout say so.

The Prometheus test skips when it is not installed locally (and fails in CI), like tests/e2e/test_monitoring_e2e.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from rehearsal.workspace import launch
from rehearsal.workspace import prometheus as local_prometheus
from tests.support.workspace import OPERATOR, Running, advance_cutover, everything, running_workspace

ALERT_WITHIN_S = 30  # the operator's expectation: an alert within ~30 s of turning the drill on


def need_prometheus() -> None:
    if local_prometheus.binary() is None:
        why = "the `prometheus` binary is not installed (apt-get install -y prometheus; `make test` does it as root)"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires Prometheus: {why}")
        pytest.skip(why)


def scraped(url: str) -> bool:
    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="trading"}'}, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return any(r["value"][1] == "1" for r in answer.get("data", {}).get("result", []))


def test_an_auth_drill_after_a_cutover_advance_is_alerted_in_the_channel(tmp_path: Path) -> None:
    need_prometheus()
    with running_workspace(tmp_path) as ws:
        world = ws.state()["world"]
        assert world["prometheus"] == {"running": True, "why": ""}
        prom = ws.session.world.prometheus
        assert prom is not None and ws.session.world.stack.deps.settings.prometheus_url == prom.url
        advance_cutover(ws)
        opened = ws.find(OPERATOR, "Post-cutover monitoring opened", ephemeral=False)
        assert f"Signals are read from Prometheus at `{prom.url}` every 2 s." in everything(opened)
        assert "OPSBOT_PROMETHEUS_URL is not set" not in everything(opened)
        deadline = time.monotonic() + 15
        while not scraped(prom.url):  # Prometheus really scrapes the simulated backend
            assert time.monotonic() < deadline, "Prometheus never scraped the simulated backend"
            time.sleep(0.5)
        ws.drill("auth-failing", True)
        started = time.monotonic()
        alert = ws.find(OPERATOR, "Monitoring alert: platform auth failures:", ephemeral=False, timeout=ALERT_WITHIN_S)
        assert time.monotonic() - started < ALERT_WITHIN_S
        assert "trigger" in everything(alert).lower() and "Propose rollback" in everything(alert)
        chart_in_thread(ws, alert)
        folder = prom.folder
    assert not folder.exists()  # stopped with the workspace, its data gone
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{prom.url}/-/ready", timeout=1)


def chart_in_thread(ws: Running, alert: dict[str, object]) -> None:
    """The chart is a file share in the alert's thread; the page can fetch it as a PNG."""
    deadline = time.monotonic() + 15
    while True:
        shares = [m for m in ws.messages() if m.get("thread_ts") == alert["ts"] and m["files"]]
        if shares:
            break
        assert time.monotonic() < deadline, "no chart in the alert's thread"
        time.sleep(0.2)
    chart = shares[0]["files"][0]
    assert chart["image"] is True and chart["name"].endswith(".png")
    answer = httpx.get(ws.url + "/api/file", params={"id": chart["id"]}, timeout=5)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert httpx.get(ws.url + "/api/file", params={"id": "FNOPE"}, timeout=5).status_code == 404


def test_without_prometheus_the_page_and_the_printout_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(local_prometheus, "binary", lambda: None)
    with running_workspace(tmp_path, use_cosmos=False) as ws:
        shown = ws.state()["world"]["prometheus"]
        assert shown["running"] is False and "Prometheus is not installed (apt-get install prometheus)" in shown["why"]
        assert ws.session.world.stack.deps.settings.prometheus_url is None  # left unset, as in any install
        launch._announce(ws.url + "/", ws.session)
    printed = capsys.readouterr().out
    assert "Prometheus: not running (Prometheus is not installed (apt-get install prometheus)" in printed
