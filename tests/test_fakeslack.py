"""Tests for the fake Slack server, driven through the real slack_sdk clients (sync and async)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakeslack import BOT_USER_ID, FakeSlack, FakeSlackProcess, FakeSlackServer, RemoteFakeSlack
from tests.fakeslack.remote import PROJECT_ROOT, READY_PREFIX

TOKEN = "xoxb-test"


@pytest.fixture(scope="module")
def server() -> Any:
    with FakeSlackServer() as fs:
        yield fs


@pytest.fixture
def fs(server: FakeSlackServer) -> FakeSlackServer:
    """The shared server with a fresh workspace for every test."""
    server.fake.reset()
    server.fake.set_users({})
    return server


@pytest.fixture
def fake(fs: FakeSlackServer) -> FakeSlack:
    return fs.fake


@pytest.fixture
def client(fs: FakeSlackServer) -> WebClient:
    """No retry handlers, so each fault is seen exactly as the fake produced it."""
    return WebClient(token=TOKEN, base_url=fs.url, retry_handlers=[])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def slack_error(call: Any, *args: Any, **kwargs: Any) -> SlackApiError:
    """Run a client call that must fail with SlackApiError and return the error."""
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def new_channel(client: WebClient, name: str = "inc-1") -> str:
    return client.conversations_create(name=name)["channel"]["id"]


# -- auth & dispatch ---------------------------------------------------------------------------------


def test_auth_test_identifies_the_bot(client: WebClient) -> None:
    resp = client.auth_test()
    assert (resp["user_id"], resp["team_id"], resp["bot_id"]) == (BOT_USER_ID, "T0TEAM", "B0BOT")


def test_bots_info_names_the_app_auth_test_does_not(client: WebClient) -> None:
    """As documented for a bot token: auth.test gives the bot ID, bots.info its app ID."""
    me = client.auth_test()
    assert me["bot_id"] == "B0BOT" and "app_id" not in me.data
    bot = client.bots_info(bot=me["bot_id"])["bot"]
    assert (bot["app_id"], bot["user_id"], bot["deleted"]) == ("A0APP", BOT_USER_ID, False)
    assert slack_error(client.bots_info, bot="B0OTHER").response["error"] == "bot_not_found"
    assert slack_error(client.bots_info).response["error"] == "bot_not_found"


def test_usergroups_users_list(fs: FakeSlackServer, client: WebClient) -> None:
    fs.fake.set_usergroup("S0ONCALL", ["U0ANN", "W0BOB"])
    assert client.usergroups_users_list(usergroup="S0ONCALL")["users"] == ["U0ANN", "W0BOB"]
    assert (
        slack_error(client.usergroups_users_list, usergroup="S0NOPE").response["error"] == "no_such_subteam"
    )


def test_missing_and_wrong_tokens_answer_http_200_errors(fs: FakeSlackServer) -> None:
    no_token = slack_error(WebClient(base_url=fs.url, retry_handlers=[]).auth_test)
    assert no_token.response.status_code == 200
    assert no_token.response["error"] == "not_authed"
    wrong = slack_error(WebClient(token="xoxb-wrong", base_url=fs.url, retry_handlers=[]).auth_test)
    assert (wrong.response.status_code, wrong.response["error"]) == (200, "invalid_auth")


def test_token_accepted_as_form_param_and_extra_tokens(fs: FakeSlackServer) -> None:
    body = b"token=xoxb-test"
    req = urllib.request.Request(f"{fs.url}auth.test", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    fs.fake.add_token("xoxb-second")
    assert WebClient(token="xoxb-second", base_url=fs.url).auth_test()["ok"]


def test_query_params_and_get_requests(fs: FakeSlackServer, client: WebClient) -> None:
    cid = new_channel(client)
    url = f"{fs.url}conversations.info?channel={cid}&token={TOKEN}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert json.loads(resp.read())["channel"]["name"] == "inc-1"


def test_unknown_method(client: WebClient) -> None:
    err = slack_error(client.api_call, "incidents.frobnicate", json={"x": 1})
    assert err.response["error"] == "unknown_method"


def test_in_process_api_needs_no_http(fake: FakeSlack) -> None:
    created = fake.api("conversations.create", name="direct")
    assert created["ok"] and fake.channel_by_name("direct").id == created["channel"]["id"]
    assert fake.api("auth.test", token=None)["error"] == "not_authed"


# -- conversations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("a" * 81, "invalid_name_maxlength"),
        ("Inc-Upper", "invalid_name_specials"),
        ("inc 1", "invalid_name_specials"),
        ("inc.1", "invalid_name_specials"),
        ("---", "invalid_name_punctuation"),
    ],
)
def test_channel_name_rules(client: WebClient, name: str, error: str) -> None:
    assert slack_error(client.conversations_create, name=name).response["error"] == error


def test_channel_names_up_to_80_chars_and_name_taken_even_when_archived(
    client: WebClient, fake: FakeSlack
) -> None:
    long_name = "a" * 80
    channel = client.conversations_create(name=long_name)["channel"]
    assert channel["creator"] == BOT_USER_ID and channel["name"] == long_name
    assert slack_error(client.conversations_create, name=long_name).response["error"] == "name_taken"
    client.conversations_archive(channel=channel["id"])
    assert slack_error(client.conversations_create, name=long_name).response["error"] == "name_taken"
    stored = fake.channel_by_name(long_name)
    # Archiving takes the bot out of the channel, as in Slack.
    assert stored.archived and stored.creator == BOT_USER_ID and stored.members == []


def test_topic_purpose_info(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    assert (
        slack_error(client.conversations_setTopic, channel=cid, topic="x" * 251).response["error"]
        == "too_long"
    )
    client.conversations_setTopic(channel=cid, topic="SEV1: checkout down")
    client.conversations_setPurpose(channel=cid, purpose="Incident 42")
    info = client.conversations_info(channel=cid)["channel"]
    assert info["topic"]["value"] == "SEV1: checkout down" and info["purpose"]["value"] == "Incident 42"
    assert fake.channels[cid].topic == "SEV1: checkout down"
    assert slack_error(client.conversations_info, channel="C0NOPE").response["error"] == "channel_not_found"


def test_conversations_list_paginates_and_filters_archived(client: WebClient) -> None:
    ids = [new_channel(client, f"inc-{i}") for i in range(5)]
    client.conversations_archive(channel=ids[0])
    seen, cursor, pages = [], None, 0
    while True:
        resp = client.conversations_list(limit=2, cursor=cursor, exclude_archived=True)
        pages += 1
        seen += [
            (c["id"], c["name"], c["creator"], c["is_archived"], c["topic"]["value"])
            for c in resp["channels"]
        ]
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 2 and [s[0] for s in seen] == ids[1:]
    assert all(s[2] == BOT_USER_ID and s[3] is False for s in seen)
    everything = client.conversations_list(limit=100)["channels"]
    assert [c["id"] for c in everything] == ids and everything[0]["is_archived"] is True
    assert slack_error(client.conversations_list, cursor="garbage").response["error"] == "invalid_cursor"


def test_invite_join_archive_members(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    client.conversations_invite(channel=cid, users="U0ALICE,U0BOB")
    assert (
        slack_error(client.conversations_invite, channel=cid, users="U0ALICE,U0BOB").response["error"]
        == "already_in_channel"
    )
    client.conversations_invite(channel=cid, users=["U0ALICE", "U0CAROL"])  # partially new is fine
    assert client.conversations_members(channel=cid)["members"] == [
        BOT_USER_ID,
        "U0ALICE",
        "U0BOB",
        "U0CAROL",
    ]
    assert (
        slack_error(client.conversations_invite, channel=cid, users="nobody").response["error"]
        == "user_not_found"
    )
    assert client.conversations_join(channel=cid)["warning"] == "already_in_channel"
    client.conversations_archive(channel=cid)
    assert slack_error(client.conversations_archive, channel=cid).response["error"] == "already_archived"
    assert slack_error(client.chat_postMessage, channel=cid, text="x").response["error"] == "is_archived"
    assert fake.channels[cid].archived


def test_bot_tokens_cannot_unarchive_a_person_can(client: WebClient, fake: FakeSlack) -> None:
    """Slack's documented bug: archiving drops the bot, unarchive answers not_in_channel, join
    answers is_archived. After a person unarchives, the bot joins and posts again."""
    cid = new_channel(client)
    client.conversations_invite(channel=cid, users="U0ALICE")
    fake.archive_channel(cid)
    assert fake.channels[cid].members == ["U0ALICE"]
    assert slack_error(client.conversations_unarchive, channel=cid).response["error"] == "not_in_channel"
    assert slack_error(client.conversations_join, channel=cid).response["error"] == "is_archived"
    fake.unarchive_channel(cid)
    assert slack_error(client.chat_postMessage, channel=cid, text="x").response["error"] == "not_in_channel"
    client.conversations_join(channel=cid)
    assert client.chat_postMessage(channel=cid, text="back")["ok"]


def test_join_required_before_posting_to_precreated_channel(client: WebClient, fake: FakeSlack) -> None:
    channel = fake.create_channel("general", members=["U0ALICE"], bot_member=False)
    assert (
        slack_error(client.chat_postMessage, channel=channel.id, text="hi").response["error"]
        == "not_in_channel"
    )
    client.conversations_join(channel=channel.id)
    assert client.chat_postMessage(channel=channel.id, text="hi")["ok"]


def test_conversations_open_dm_is_stable_per_user(client: WebClient, fake: FakeSlack) -> None:
    first = client.conversations_open(users="U0ALICE")["channel"]["id"]
    again = client.conversations_open(users="U0ALICE")
    other = client.conversations_open(users="U0BOB")["channel"]["id"]
    assert first.startswith("D") and again["channel"]["id"] == first and again["already_open"] is True
    assert other != first
    client.chat_postMessage(channel="U0ALICE", text="you are on call")  # posting to a user id -> the DM
    assert fake.messages(first)[-1]["text"] == "you are on call"


def test_history_newest_first_with_optional_metadata(client: WebClient) -> None:
    cid = new_channel(client)
    metadata = {"event_type": "incident_update", "event_payload": {"id": 42}}
    first = client.chat_postMessage(channel=cid, text="one", metadata=metadata)["ts"]
    second = client.chat_postMessage(channel=cid, text="two")["ts"]
    client.chat_postMessage(channel=cid, text="reply", thread_ts=first)
    assert float(second) > float(first)
    plain = client.conversations_history(channel=cid)["messages"]
    assert [m["text"] for m in plain] == ["two", "one"] and "metadata" not in plain[1]
    assert plain[1]["reply_count"] == 1
    rich = client.conversations_history(channel=cid, include_all_metadata=True)["messages"]
    assert rich[1]["metadata"] == metadata
    page = client.conversations_history(channel=cid, limit=1)
    assert page["has_more"] is True and len(page["messages"]) == 1
    thread = client.conversations_replies(channel=cid, ts=first)["messages"]
    assert [m["text"] for m in thread] == ["one", "reply"]


# -- chat, pins, reactions ---------------------------------------------------------------------------


def test_post_update_delete_ephemeral(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    posted = client.chat_postMessage(channel=cid, text="Incident declared", blocks=[section("*SEV1*")])
    assert posted["ts"] == "1732400000.000100" and posted["message"]["text"] == "Incident declared"
    assert (
        slack_error(client.chat_postMessage, channel="C0MISSING", text="x").response["error"]
        == "channel_not_found"
    )
    client.chat_update(channel=cid, ts=posted["ts"], text="Incident resolved")
    stored = fake.messages(cid)[0]
    assert stored["text"] == "Incident resolved" and stored["blocks"] == [section("*SEV1*")]
    assert (
        slack_error(client.chat_update, channel=cid, ts="1.000000", text="x").response["error"]
        == "message_not_found"
    )
    fake.check_ephemeral_recipients()
    assert (
        slack_error(client.chat_postEphemeral, channel=cid, user="U0ALICE", text="x").response["error"]
        == "user_not_in_channel"
    )
    client.conversations_invite(channel=cid, users="U0ALICE")
    assert client.chat_postEphemeral(channel=cid, user="U0ALICE", text="only you")["message_ts"]
    assert fake.channels[cid].ephemeral[0]["text"] == "only you" and len(fake.messages(cid)) == 1
    client.chat_delete(channel=cid, ts=posted["ts"])
    assert fake.messages(cid) == []


def test_pins_and_reactions(client: WebClient) -> None:
    cid = new_channel(client)
    ts = client.chat_postMessage(channel=cid, text="status")["ts"]
    client.pins_add(channel=cid, timestamp=ts)
    assert slack_error(client.pins_add, channel=cid, timestamp=ts).response["error"] == "already_pinned"
    assert client.pins_list(channel=cid)["items"][0]["message"]["ts"] == ts
    client.reactions_add(channel=cid, timestamp=ts, name="eyes")
    assert (
        slack_error(client.reactions_add, channel=cid, timestamp=ts, name="eyes").response["error"]
        == "already_reacted"
    )
    history = client.conversations_history(channel=cid)["messages"]
    assert history[0]["reactions"] == [{"name": "eyes", "users": [BOT_USER_ID], "count": 1}]


def test_users_info_and_lookup_by_email(client: WebClient, fake: FakeSlack) -> None:
    assert (
        slack_error(client.users_lookupByEmail, email="alice@example.com").response["error"]
        == "users_not_found"
    )
    fake.set_users(
        {"alice@example.com": "U0ALICE", "bob@example.com": {"id": "U0BOB", "tz": "Europe/Berlin"}}
    )
    assert client.users_lookupByEmail(email="Alice@Example.com")["user"]["id"] == "U0ALICE"
    assert client.users_info(user="U0BOB")["user"]["tz"] == "Europe/Berlin"
    assert client.users_info(user="U0SOMEONE")["user"]["id"] == "U0SOMEONE"  # lenient for any U-id
    assert slack_error(client.users_info, user="not-a-user").response["error"] == "user_not_found"


def test_views_open_and_update(client: WebClient, fake: FakeSlack) -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Declare incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "title"},
            }
        ],
    }
    opened = client.views_open(trigger_id="trig-1", view=view)["view"]
    assert opened["id"].startswith("V") and fake.views[opened["id"]]["title"]["text"] == "Declare incident"
    assert (
        slack_error(client.views_open, trigger_id="trig-1", view=view).response["error"]
        == "exchanged_trigger_id"
    )
    updated = client.views_update(view_id=opened["id"], view={**view, "blocks": [section("done")]})["view"]
    assert updated["id"] == opened["id"] and updated["blocks"] == [section("done")]
    assert slack_error(client.views_update, view_id="V0NOPE", view=view).response["error"] == "not_found"
    too_many = {**view, "blocks": [section(str(i)) for i in range(101)]}
    err = slack_error(client.views_open, trigger_id="trig-2", view=too_many)
    assert err.response["error"] == "invalid_arguments"
    assert any("no more than 100 items" in e for e in err.response["errors"])


# -- Block Kit limits --------------------------------------------------------------------------------


def button(action_id: str, text: str = "Ack", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


@pytest.mark.parametrize(
    ("blocks", "needle"),
    [
        ([section(str(i)) for i in range(51)], "no more than 50 items allowed [json-pointer:/blocks]"),
        ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "/blocks/0/fields"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            "/blocks/0/fields/0/text",
        ),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}], "/blocks/0/text/type"),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "/blocks/0/elements"),
        ([{"type": "actions", "elements": [button(f"a{i}") for i in range(26)]}], "/blocks/0/elements"),
        ([{"type": "actions", "elements": [button("ack", text="b" * 76)]}], "/elements/0/text/text"),
        ([{"type": "actions", "elements": [button("ack", value="v" * 2001)]}], "/elements/0/value"),
        ([{"type": "actions", "elements": [button("a" * 256)]}], "/elements/0/action_id"),
        ([{"type": "actions", "elements": [button("ack"), button("ack")]}], "duplicate action_id"),
        ([{**section("a"), "block_id": "b1"}, {**section("b"), "block_id": "b1"}], "duplicate block_id"),
        ([{**section("a"), "block_id": "b" * 256}], "/blocks/0/block_id"),
        ([{"type": "sparkle"}], "unsupported type: sparkle"),
        ([{"type": "section", "text": {"type": "markdown", "text": "x"}}], "/blocks/0/text/type"),
    ],
)
def test_block_kit_limits(
    client: WebClient, fake: FakeSlack, blocks: list[dict[str, Any]], needle: str
) -> None:
    cid = new_channel(client)
    err = slack_error(client.chat_postMessage, channel=cid, text="fallback", blocks=blocks)
    assert err.response["error"] == "invalid_blocks"
    assert any(needle in e for e in err.response["errors"]), err.response["errors"]
    assert fake.messages(cid) == []


def test_block_kit_limits_are_inclusive(client: WebClient) -> None:
    cid = new_channel(client)
    blocks = [section("x" * 3000)] + [section(str(i)) for i in range(48)]
    blocks.append({"type": "actions", "elements": [button(f"a{i}", text="b" * 75) for i in range(25)]})
    assert client.chat_postMessage(channel=cid, text="ok", blocks=blocks)["ok"]
    err = slack_error(
        client.chat_update,
        channel=cid,
        ts=client.chat_postMessage(channel=cid, text="x")["ts"],
        text="y",
        blocks=[section("y" * 3001)],
    )
    assert err.response["error"] == "invalid_blocks"


def test_no_text_and_msg_too_long(client: WebClient) -> None:
    cid = new_channel(client)
    assert (
        slack_error(client.api_call, "chat.postMessage", json={"channel": cid}).response["error"] == "no_text"
    )
    assert (
        slack_error(client.chat_postMessage, channel=cid, text="x" * 40_001).response["error"]
        == "msg_too_long"
    )
    assert client.chat_postMessage(channel=cid, text="x" * 40_000)["ok"]


def test_form_encoded_blocks_are_decoded_and_recorded(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    client.api_call(
        "chat.postMessage", params={"channel": cid, "text": "t", "blocks": json.dumps([section("a")])}
    )
    client.chat_postMessage(channel=cid, text="t", blocks=[section("b")])  # JSON body
    form_call, json_call = fake.calls_to("chat.postMessage")
    assert form_call.args["blocks"] == [section("a")] and json_call.args["blocks"] == [section("b")]
    assert fake.calls_to("conversations.create")[0].args == {"name": "inc-1"}


# -- faults --------------------------------------------------------------------------------------------


def test_ratelimit_fault_is_429_with_retry_after_and_no_side_effect(
    client: WebClient, fake: FakeSlack
) -> None:
    cid = new_channel(client)
    fake.add_fault(method="chat.postMessage", mode="ratelimit", retry_after=2, count=1)
    err = slack_error(client.chat_postMessage, channel=cid, text="first")
    assert err.response.status_code == 429 and err.response["error"] == "ratelimited"
    assert err.response.headers["Retry-After"] == "2"
    assert fake.messages(cid) == []
    assert client.chat_postMessage(channel=cid, text="second")["ok"]
    faulted, ok = fake.calls_to("chat.postMessage")
    assert faulted.status == 429 and faulted.fault["mode"] == "ratelimit" and faulted.args["text"] == "first"
    assert ok.fault is None and [m["text"] for m in fake.messages(cid)] == ["second"]


def test_sdk_rate_limit_retry_handler_honours_retry_after(fs: FakeSlackServer, fake: FakeSlack) -> None:
    retrying = WebClient(
        token=TOKEN, base_url=fs.url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)]
    )
    fake.add_fault(method="auth.test", mode="ratelimit", retry_after=1, count=1)
    assert retrying.auth_test()["ok"]
    first, second = fake.calls_to("auth.test")
    assert first.status == 429 and second.status == 200
    assert second.monotonic - first.monotonic >= 0.9


def test_error500_fault(client: WebClient, fake: FakeSlack) -> None:
    fake.add_fault(method="conversations.create", mode="error500")
    err = slack_error(client.conversations_create, name="inc-500")
    assert err.response.status_code == 500
    assert fake.channel_by_name("inc-500") is None
    fake.clear_faults()
    assert client.conversations_create(name="inc-500")["ok"]


def test_error_fault_is_a_slack_refusal(client: WebClient, fake: FakeSlack) -> None:
    fake.add_fault(method="conversations.create", mode="error", error="restricted_action")
    err = slack_error(client.conversations_create, name="inc-refused")
    assert (err.response.status_code, err.response["error"]) == (200, "restricted_action")
    assert fake.channel_by_name("inc-refused") is None
    fake.clear_faults()
    first, second = new_channel(client, "inc-a"), new_channel(client, "inc-b")
    fake.add_fault(method="chat.postMessage", mode="error500", channel=second)
    assert client.chat_postMessage(channel=first, text="fine")["ok"]
    assert slack_error(client.chat_postMessage, channel=second, text="x").response.status_code == 500


def test_slow_fault_delays_but_succeeds(client: WebClient, fake: FakeSlack) -> None:
    fake.add_fault(method="auth.test", mode="slow", delay=0.3, count=1)
    started = time.monotonic()
    assert client.auth_test()["ok"]
    assert time.monotonic() - started >= 0.3
    (call,) = fake.calls_to("auth.test")
    # The fake's own clock reading may come out a microsecond short of the sleep it timed.
    assert call.fault["mode"] == "slow" and call.status == 200 and call.duration >= 0.3 - 1e-3


def test_drop_fault_is_a_connection_error_without_side_effect(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    fake.add_fault(method="chat.postMessage", mode="drop", count=1)
    with pytest.raises((ConnectionError, OSError)):
        client.chat_postMessage(channel=cid, text="lost")
    assert fake.messages(cid) == []
    (call,) = fake.calls_to("chat.postMessage")
    assert call.status is None and call.response is None and call.fault["mode"] == "drop"


def test_drop_is_retried_by_the_sdk_connection_handler(fs: FakeSlackServer, fake: FakeSlack) -> None:
    default_client = WebClient(
        token=TOKEN, base_url=fs.url, retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)]
    )
    cid = new_channel(default_client)
    fake.add_fault(method="chat.postMessage", mode="drop", count=1)
    assert default_client.chat_postMessage(channel=cid, text="eventually")["ok"]
    assert [c.fault is not None for c in fake.calls_to("chat.postMessage")] == [True, False]
    assert len(fake.messages(cid)) == 1


@pytest.mark.anyio
async def test_async_client_sees_drop_and_ratelimit(fs: FakeSlackServer, fake: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=fs.url, retry_handlers=[])
    cid = (await client.conversations_create(name="inc-async"))["channel"]["id"]
    fake.add_fault(method="chat.postMessage", mode="drop", count=1)
    with pytest.raises(aiohttp.ClientError):
        await client.chat_postMessage(channel=cid, text="lost")
    fake.add_fault(method="chat.postMessage", mode="ratelimit", retry_after=7, count=1)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=cid, text="limited")
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "7"
    assert (await client.chat_postMessage(channel=cid, text="ok"))["ok"]
    assert [m["text"] for m in fake.messages(cid)] == ["ok"]


def test_timeout_fault_outlasts_the_client(fs: FakeSlackServer, fake: FakeSlack) -> None:
    impatient = WebClient(token=TOKEN, base_url=fs.url, timeout=1, retry_handlers=[])
    cid = new_channel(impatient)
    fake.add_fault(method="chat.postMessage", mode="timeout", count=1)
    started = time.monotonic()
    with pytest.raises(OSError):  # socket.timeout / TimeoutError
        impatient.chat_postMessage(channel=cid, text="never")
    assert 0.9 <= time.monotonic() - started < 5
    assert fake.messages(cid) == [] and fake.calls_to("chat.postMessage")[0].fault["mode"] == "timeout"


def test_probability_faults_are_seeded_and_repeatable(client: WebClient, fake: FakeSlack) -> None:
    def outcomes() -> list[int]:
        fake.reset()
        fake.add_fault(method="auth.test", mode="ratelimit", probability=0.5, seed=7)
        for _ in range(30):
            with contextlib.suppress(SlackApiError):
                client.auth_test()
        return [c.status for c in fake.calls_to("auth.test")]

    first, second = outcomes(), outcomes()
    assert first == second
    assert 5 < first.count(429) < 25 and first.count(200) == 30 - first.count(429)
    fake.reset()
    fake.add_fault(method="auth.test", mode="ratelimit", probability=0.0)
    assert client.auth_test()["ok"]


def test_duration_after_and_glob(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    fake.add_fault(method="chat.*", mode="error500", after=1, count=1)
    assert client.chat_postMessage(channel=cid, text="let through")["ok"]
    assert slack_error(client.chat_postMessage, channel=cid, text="broken").response.status_code == 500
    assert client.chat_postMessage(channel=cid, text="count used up")["ok"]
    fake.add_fault(method="*", mode="ratelimit", duration=0.3)
    assert slack_error(client.auth_test).response.status_code == 429
    time.sleep(0.4)
    assert client.auth_test()["ok"]
    assert all(f["expired"] for f in fake.faults)


def test_invalid_fault_specs_are_rejected(fake: FakeSlack) -> None:
    with pytest.raises(ValueError, match="unknown fault mode"):
        fake.add_fault(mode="explode")
    with pytest.raises(ValueError, match="unknown fault keys"):
        fake.add_fault(mode="drop", cnt=1)


# -- recording -----------------------------------------------------------------------------------------


def test_recording_and_reset(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    client.chat_postMessage(channel=cid, text="hello")
    calls = fake.calls
    assert [c.method for c in calls] == ["conversations.create", "chat.postMessage"]
    assert calls[1].response["ts"] == fake.messages(cid)[0]["ts"] and calls[1].status == 200
    assert calls[1].token == TOKEN and calls[1].ok and calls[0].monotonic <= calls[1].monotonic
    assert abs(calls[1].wall - time.time()) < 60
    assert fake.channels[cid].messages[0]["text"] == "hello"
    fake.reset()
    assert fake.calls == [] and fake.channels == {}


def test_next_call_marks_where_incremental_polling_starts(fs: FakeSlackServer, client: WebClient) -> None:
    admin = RemoteFakeSlack(fs.base_url)
    cid = new_channel(client)
    mark = admin.next_call()
    client.chat_postMessage(channel=cid, text="after the mark")
    assert [c["args"]["text"] for c in admin.calls("chat.postMessage", since=mark)] == ["after the mark"]
    assert admin.next_call() == mark + 1
    fs.fake.clear_calls()
    assert admin.next_call() == mark + 1  # forgetting calls does not move the mark


def test_concurrent_posts_are_all_recorded_with_unique_ts(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: client.chat_postMessage(channel=cid, text=f"m{i}"), range(80)))
    timestamps = [m["ts"] for m in fake.messages(cid)]
    assert len(timestamps) == len(set(timestamps)) == 80 == len(fake.calls_to("chat.postMessage"))
    assert timestamps == sorted(timestamps, key=float)


def test_wait_for_call(client: WebClient, fake: FakeSlack) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: (time.sleep(0.1), client.auth_test()))
        (call,) = fake.wait_for_call("auth.test", timeout=5)
    assert call.ok
    with pytest.raises(TimeoutError):
        fake.wait_for_call("chat.postMessage", timeout=0.1)


# -- files ---------------------------------------------------------------------------------------------


def test_files_upload_v2_content_is_retrievable(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    resp = client.files_upload_v2(
        channel=cid,
        content="# Postmortem\nroot cause: DNS",
        filename="pm.md",
        title="Postmortem",
        initial_comment="Draft postmortem attached",
    )
    file_id = resp["file"]["id"]
    assert fake.files[file_id].text == "# Postmortem\nroot cause: DNS"
    assert fake.files[file_id].channels == [cid] and fake.files[file_id].title == "Postmortem"
    message = fake.messages(cid)[-1]
    assert message["text"] == "Draft postmortem attached" and message["files"][0]["id"] == file_id
    assert [c.method for c in fake.calls][-3:] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert client.files_info(file=file_id)["file"]["channels"] == [cid]


@pytest.mark.anyio
async def test_async_files_upload_v2(fs: FakeSlackServer, fake: FakeSlack) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=fs.url)
    cid = (await client.conversations_create(name="inc-files"))["channel"]["id"]
    resp = await client.files_upload_v2(channel=cid, content=b"timeline bytes", filename="timeline.txt")
    assert fake.file_content(resp["file"]["id"]) == b"timeline bytes"


def test_complete_upload_requires_uploaded_file(client: WebClient, fake: FakeSlack) -> None:
    cid = new_channel(client)
    file_id = client.files_getUploadURLExternal(filename="x.txt", length=3)["file_id"]
    err = slack_error(client.files_completeUploadExternal, files=[{"id": file_id}], channel_id=cid)
    assert err.response["error"] == "file_not_found"


# -- admin HTTP API & standalone process -------------------------------------------------------------


def test_admin_endpoints(fs: FakeSlackServer, client: WebClient) -> None:
    admin = RemoteFakeSlack(fs.base_url)
    channel = admin.create_channel("inc-admin", members=["U0ALICE"])
    admin.add_message(channel["id"], "human note", user="U0ALICE")
    fault = admin.add_fault({"method": "chat.postMessage", "mode": "ratelimit", "retry_after": 2, "count": 1})
    assert fault["id"] >= 1 and fault["mode"] == "ratelimit"
    err = slack_error(client.chat_postMessage, channel=channel["id"], text="limited")
    assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "2"
    client.chat_postMessage(channel=channel["id"], text="ok")
    calls = admin.calls("chat.postMessage")
    assert [c["status"] for c in calls] == [429, 200] and calls[0]["fault"]["mode"] == "ratelimit"
    state = admin.state()
    texts = [m["text"] for m in state["channels"][channel["id"]]["messages"]]
    assert texts == ["human note", "ok"]
    admin.set_users({"carol@example.com": "U0CAROL"})
    assert client.users_lookupByEmail(email="carol@example.com")["user"]["id"] == "U0CAROL"
    assert admin.request("GET", "faults")["faults"][0]["fired"] == 1
    admin.clear_faults()
    assert admin.request("GET", "faults")["faults"] == []
    file_id = client.files_upload_v2(channel=channel["id"], content="abc", filename="a.txt")["file"]["id"]
    assert admin.file_content(file_id) == b"abc"
    admin.reset()
    assert admin.state()["channels"] == {} and admin.calls() == []
    bad = urllib.request.Request(f"{fs.base_url}_fake/faults", data=b'{"mode": "nope"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bad, timeout=5)
    assert info.value.code == 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_standalone_module_serves_auth_test() -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "tests.fakeslack", "--port", str(port), "--token", "xoxb-standalone"]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(READY_PREFIX), line
        url = line[len(READY_PREFIX) :].strip()
        assert url == f"http://127.0.0.1:{port}/api/"
        resp = WebClient(token="xoxb-standalone", base_url=url).auth_test()
        assert resp["user_id"] == BOT_USER_ID
        assert RemoteFakeSlack(url.removesuffix("api/")).calls("auth.test")[0]["status"] == 200
    finally:
        proc.terminate()
        assert proc.wait(10) is not None
        proc.stdout.close()


def test_fake_slack_process_helper() -> None:
    with FakeSlackProcess() as proc:
        client = WebClient(token=TOKEN, base_url=proc.url, retry_handlers=[])
        proc.admin.add_fault(method="auth.test", mode="error500", count=1)
        assert slack_error(client.auth_test).response.status_code == 500
        assert client.auth_test()["ok"]
        assert [c["status"] for c in proc.admin.wait_for_call("auth.test", count=2)] == [500, 200]
    assert proc.proc is not None and proc.proc.returncode is not None


def test_deactivated_bot_and_unknown_users_are_refused_like_slack(
    fs: FakeSlackServer, client: WebClient, fake: FakeSlack
) -> None:
    """conversations.open: a deactivated account is `user_disabled`, a bot user `cannot_dm_bot`, an
    ID unknown to the workspace `user_not_found`. A DM opened before the deactivation still takes
    posts (Slack keeps the history and answers ok), so only opening a DM tells."""
    earlier = client.conversations_open(users="U0ALICE")["channel"]["id"]
    fake.deactivate_user("U0ALICE")
    fake.update_user("U0HELPER", is_bot=True)
    fake.update_user("U0GONE", exists=False)
    assert client.users_info(user="U0ALICE")["user"]["deleted"] is True
    assert slack_error(client.conversations_open, users="U0ALICE").response["error"] == "user_disabled"
    assert slack_error(client.conversations_open, users="U0HELPER").response["error"] == "cannot_dm_bot"
    assert slack_error(client.chat_postMessage, channel="U0HELPER", text="x").response["error"] == (
        "cannot_dm_bot"
    )
    assert slack_error(client.conversations_open, users="U0GONE").response["error"] == "user_not_found"
    assert slack_error(client.users_info, user="U0GONE").response["error"] == "user_not_found"
    assert client.chat_postMessage(channel=earlier, text="still ok")["ok"]
    fake.reset()  # account changes outlive a reset, like the directory
    assert slack_error(client.conversations_open, users="U0ALICE").response["error"] == "user_disabled"
    admin = RemoteFakeSlack(fs.base_url)
    assert admin.update_user("U0ALICE", deleted=False)["deleted"] is False
    assert client.conversations_open(users="U0ALICE")["ok"]


def test_a_fault_can_target_one_channel_and_refuse_like_slack(client: WebClient, fake: FakeSlack) -> None:
    """`channel` narrows a rule to matching `channel` arguments; `error500` with `status: 200` is how
    Slack refuses a call (HTTP 200, ok: false) with any error code."""
    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    cid = new_channel(client)
    fake.add_fault(
        method="chat.postMessage", channel="D*", mode="error500", status=200, error="restricted_action"
    )
    assert client.chat_postMessage(channel=cid, text="channels are fine")["ok"]
    err = slack_error(client.chat_postMessage, channel=dm, text="you are paged")
    assert (err.response.status_code, err.response["error"]) == (200, "restricted_action")
