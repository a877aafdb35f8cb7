"""The local Slack peer, driven by the real slack_sdk WebClient and WebhookClient over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from rehearsal.slack.peer import SlackPeer

TOKEN = "xoxb-local-test"


@pytest.fixture
def peer() -> Iterator[SlackPeer]:
    with SlackPeer(bot_token=TOKEN) as running:
        yield running


@pytest.fixture
def client(peer: SlackPeer) -> WebClient:
    # No retry handlers: WebClient's default is a connection-error retry only, not 429.
    return WebClient(token=TOKEN, base_url=peer.api_url, retry_handlers=[])


BLOCKS = [{"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "*halt* requested"}}]


def test_api_url_has_trailing_slash_and_auth_test(peer: SlackPeer, client: WebClient) -> None:
    assert peer.api_url.startswith("http://127.0.0.1:") and peer.api_url.endswith("/api/")
    auth = client.auth_test()
    assert auth["user_id"] == "UBOT" and auth["team_id"] == "T0LOCAL00" and auth["bot_id"]
    assert peer.calls_to("auth.test")[0].token == TOKEN


def test_post_update_ephemeral_round_trip(peer: SlackPeer, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C0INCIDENT", text="halt requested", blocks=BLOCKS)
    second = client.chat_postMessage(channel="C0INCIDENT", text="second", thread_ts=first["ts"])
    assert first["ok"] and first["channel"] == "C0INCIDENT"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == BLOCKS and first["message"]["bot_id"]

    updated = client.chat_update(channel="C0INCIDENT", ts=first["ts"], text="halt approved")
    assert updated["ts"] == first["ts"] and updated["message"]["text"] == "halt approved"
    stored = peer.channel_messages("C0INCIDENT")
    assert [m["ts"] for m in stored] == [first["ts"], second["ts"]]
    assert stored[0]["text"] == "halt approved"
    assert stored[0]["blocks"] == BLOCKS  # chat.update keeps blocks it was not given
    assert "edited" in stored[0] and stored[1]["thread_ts"] == first["ts"]

    eph = client.chat_postEphemeral(channel="C0INCIDENT", user="U0ALICE", text="only you")
    assert eph["message_ts"]
    assert [m["text"] for m in peer.ephemerals("U0ALICE")] == ["only you"]
    assert peer.ephemerals("U0BOB") == []
    link = client.chat_getPermalink(channel="C0INCIDENT", message_ts=first["ts"])
    assert link["permalink"].endswith("/archives/C0INCIDENT/p" + first["ts"].replace(".", ""))


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_slack_style_argument_errors(peer: SlackPeer, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as no_text:
        client.chat_postMessage(channel="C0INCIDENT")
    assert no_text.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel="C0INCIDENT", ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as no_channel:
        client.api_call("chat.postMessage", json={"text": "x"})
    assert no_channel.value.response["error"] == "channel_not_found"
    assert len(peer.calls) == 3  # failed calls are recorded too


def test_form_encoded_calls_and_lookups(peer: SlackPeer, client: WebClient) -> None:
    # slack_sdk sends these as form fields; blocks arrive as a JSON string and are decoded.
    form = {"channel": "C0INCIDENT", "blocks": json.dumps(BLOCKS)}
    posted = client.api_call("chat.postMessage", params=form)
    assert posted["message"]["blocks"] == BLOCKS
    assert peer.calls_to("chat.postMessage")[0].args["blocks"] == BLOCKS  # recorded decoded
    with pytest.raises(SlackApiError) as bad:
        client.api_call("chat.postMessage", params={"channel": "C0INCIDENT", "blocks": "[not json"})
    assert bad.value.response["error"] == "invalid_blocks_format"
    peer.workspace.add_user("U0ALICE", name="alice")
    with pytest.raises(SlackApiError) as unscoped:  # manifest.yaml asks for no users:read
        client.users_info(user="U0ALICE")
    assert unscoped.value.response["error"] == "missing_scope" and unscoped.value.response["needed"] == "users:read"
    peer.workspace.scopes |= {"users:read", "channels:read"}
    assert client.users_info(user="U0ALICE")["user"]["name"] == "alice"
    assert client.users_info(user="U0GENERATED")["user"]["id"] == "U0GENERATED"
    assert client.conversations_info(channel="C0INCIDENT")["channel"]["id"] == "C0INCIDENT"
    view = {"type": "home", "blocks": BLOCKS}
    assert client.views_publish(user_id="U0ALICE", view=view)["view"]["type"] == "home"
    assert peer.workspace.home_view("U0ALICE") is not None


def test_token_in_form_field_and_auth_errors(peer: SlackPeer) -> None:
    answer = httpx.post(peer.api_url + "auth.test", data={"token": TOKEN}).json()
    assert answer["ok"] is True
    assert httpx.post(peer.api_url + "auth.test").json() == {"ok": False, "error": "not_authed"}
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxb-wrong", base_url=peer.api_url).chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "invalid_auth"
    assert peer.calls_to("chat.postMessage")[0].token == "xoxb-wrong"
    assert peer.channel_messages("C1") == []


def test_ratelimited_without_retry_handler(peer: SlackPeer, client: WebClient) -> None:
    peer.ratelimit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0INCIDENT", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    retry_after = {k.lower(): v for k, v in err.value.response.headers.items()}["retry-after"]
    assert retry_after in ("7", ["7"])  # slack_sdk keeps header values as lists
    assert client.chat_postMessage(channel="C0INCIDENT", text="x")["ok"]  # only the next call


def test_ratelimited_with_retry_handler_succeeds_on_second_try(peer: SlackPeer) -> None:
    retrying = WebClient(
        token=TOKEN, base_url=peer.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    peer.ratelimit("chat.postMessage", retry_after=0)  # slack_sdk sleeps Retry-After + up to 1 s
    assert retrying.chat_postMessage(channel="C0INCIDENT", text="x")["ok"]
    assert len(peer.calls_to("chat.postMessage")) == 2
    assert len(peer.channel_messages("C0INCIDENT")) == 1


def test_injected_failure(peer: SlackPeer, client: WebClient) -> None:
    peer.fail("chat.update", error="cant_update_message", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            client.chat_update(channel="C0INCIDENT", ts="1.1", text="x")
        assert err.value.response["error"] == "cant_update_message"
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C0INCIDENT", ts="1.1", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_unknown_method(peer: SlackPeer, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        client.api_call("chat.nonsense", params={"channel": "C1"})
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "unknown_method"
    assert peer.calls_to("chat.nonsense")[0].args == {"channel": "C1"}


def test_response_url_ephemeral_in_channel_replace_and_delete(peer: SlackPeer, client: WebClient) -> None:
    command_url = peer.response_url(channel="C0INCIDENT", user="U0ALICE")
    assert WebhookClient(command_url).send(text="usage: /halt ...").status_code == 200
    assert WebhookClient(command_url).send(text="halt posted", response_type="in_channel").status_code == 200
    assert [m["text"] for m in peer.ephemerals("U0ALICE")] == ["usage: /halt ..."]
    assert [m["text"] for m in peer.channel_messages("C0INCIDENT")] == ["halt posted"]

    ts = client.chat_postMessage(channel="C0INCIDENT", text="approve?", blocks=BLOCKS)["ts"]
    action_url = peer.response_url(channel="C0INCIDENT", user="U0BOB", message_ts=ts)
    WebhookClient(action_url).send(text="approved by bob", replace_original=True)
    replaced = next(m for m in peer.channel_messages("C0INCIDENT") if m["ts"] == ts)
    assert replaced["text"] == "approved by bob" and "blocks" not in replaced  # buttons gone
    WebhookClient(action_url).send_dict({"delete_original": True})
    assert ts not in [m["ts"] for m in peer.channel_messages("C0INCIDENT")]

    calls = peer.wait_for_call("response_url", count=4)
    assert calls[0].args["_url_id"] == command_url.rsplit("/", 1)[1]
    assert calls[1].args["response_type"] == "in_channel"


def test_response_url_limits(peer: SlackPeer) -> None:
    url = peer.response_url(channel="C0INCIDENT", user="U0ALICE")
    assert httpx.post(url, json={"response_type": "ephemeral"}).json()["error"] == "no_text"
    assert httpx.post(url, json={"blocks": "nope"}).status_code == 400
    for _ in range(5):
        assert httpx.post(url, json={"text": "x"}).status_code == 200
    used = httpx.post(url, json={"text": "x"})
    assert (used.status_code, used.json()["error"]) == (404, "used_url")
    assert httpx.post(peer.base_url + "/response/unknown", json={"text": "x"}).status_code == 404


def test_wait_for_waits_for_calls_from_other_threads(peer: SlackPeer, client: WebClient) -> None:
    timer = threading.Timer(0.2, lambda: client.chat_postMessage(channel="C0INCIDENT", text="later"))
    timer.start()
    calls = peer.wait_for_call("chat.postMessage", where=lambda c: c.args.get("channel") == "C0INCIDENT")
    assert calls[0].args["text"] == "later"
    timer.join()


def test_wait_for_times_out_with_summary(peer: SlackPeer, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"auth\.test"):
        peer.wait_for_call("chat.update", timeout=0.2)


def test_json_content_type_header(peer: SlackPeer) -> None:
    answer = httpx.post(peer.api_url + "auth.test", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.headers["content-type"] == "application/json; charset=utf-8"


def refused(call: Callable[[], object]) -> dict[str, object]:
    with pytest.raises(SlackApiError) as caught:
        call()
    answer = caught.value.response
    assert answer.status_code == 200 and answer["ok"] is False
    return dict(answer.data)  # type: ignore[arg-type]


def test_channels_exist_only_once_added_and_membership_decides(peer: SlackPeer, client: WebClient) -> None:
    assert refused(lambda: client.chat_postMessage(channel="C0NOSUCH", text="x"))["error"] == "channel_not_found"
    peer.workspace.add_channel("G0SECRET", is_private=True, is_member=False)
    assert refused(lambda: client.chat_postMessage(channel="G0SECRET", text="x"))["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="C0ANNOUNCE", text="x")["ok"]  # public, not a member: chat:write.public
    peer.workspace.scopes -= {"chat:write.public"}
    assert refused(lambda: client.chat_postMessage(channel="C0ANNOUNCE", text="x"))["error"] == "not_in_channel"
    peer.workspace.add_channel("C0OLD", is_archived=True)
    assert refused(lambda: client.chat_postMessage(channel="C0OLD", text="x"))["error"] == "is_archived"


def test_blocks_and_text_beyond_slacks_limits_are_refused(client: WebClient) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    many = refused(lambda: client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[section] * 51))
    assert many["error"] == "invalid_blocks" and "no more than 50 items allowed" in str(many["errors"])
    long = {"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}
    too_long = refused(lambda: client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[long]))
    assert too_long["error"] == "invalid_blocks" and "/blocks/0/text/text" in str(too_long["response_metadata"])
    odd = refused(lambda: client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[{"type": "table"}]))
    assert odd["error"] == "invalid_blocks"
    assert refused(lambda: client.chat_postMessage(channel="C0INCIDENT", text="z" * 40_001))["error"] == "msg_too_long"
    assert client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[section] * 50)["ok"]


def test_views_publish_takes_100_blocks_and_refuses_a_stale_hash(client: WebClient) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    view = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [section] * 100})["view"]
    over = refused(lambda: client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [section] * 101}))
    assert over["error"] == "invalid_arguments" and "no more than 100 items allowed" in str(over["response_metadata"])
    fresh = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": []}, hash=view["hash"])
    stale = refused(
        lambda: client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": []}, hash=view["hash"])
    )
    assert fresh["ok"] and stale["error"] == "hash_conflict"


def test_missing_scope_names_what_the_manifest_lacks_and_join_needs_a_public_channel(
    peer: SlackPeer, client: WebClient
) -> None:
    assert "channels:join" in peer.workspace.scopes  # read from manifest.yaml
    joined = client.conversations_join(channel="C0ANNOUNCE")
    assert joined["channel"]["is_member"] is True and "warning" not in joined.data  # type: ignore[operator]
    assert client.conversations_join(channel="C0ANNOUNCE")["warning"] == "already_in_channel"
    peer.workspace.add_channel("G0SECRET", is_private=True, is_member=True)
    assert (
        refused(lambda: client.conversations_join(channel="G0SECRET"))["error"]
        == "method_not_supported_for_channel_type"
    )
    peer.workspace.scopes -= {"channels:join"}
    missing = refused(lambda: client.conversations_join(channel="C0RANDOM"))
    assert missing["error"] == "missing_scope" and missing["needed"] == "channels:join"
    assert "chat:write" in str(missing["provided"]).split(",")


def test_a_file_share_needs_membership(peer: SlackPeer, client: WebClient) -> None:
    answer = refused(lambda: client.files_upload_v2(channel="C0ANNOUNCE", content=b"png", filename="c.png"))
    assert answer["error"] == "not_in_channel" and peer.files.shared_in("C0ANNOUNCE") == []
    assert client.files_upload_v2(channel="C0INCIDENT", content=b"png", filename="c.png")["ok"]
    assert len(peer.files.shared_in("C0INCIDENT")) == 1
