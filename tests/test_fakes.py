"""The fake LINE and Slack servers, exercised through the real SDK clients over real HTTP.

If these pass, end-to-end tests built on the fakes see what the real clients would see.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.fakes.line import FakeLine
from bridge.fakes.server import FakeServer
from bridge.fakes.slack import FakeSlack
from tests.reference import reference_file

LINE_TOKEN = "line-token-for-tests"
SLACK_TOKEN = "xoxb-token-for-tests"
USER = "U1234567890abcdef1234567890abcdef"
CHANNEL = "C0CONSULT"


# ---------------------------------------------------------------------- fixtures
# One server per module (starting one costs a few ms, but there is no need), reset per test.


@pytest.fixture(scope="module")
def line_server() -> Iterator[FakeLine]:
    with FakeLine(access_token=LINE_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=SLACK_TOKEN) as fake:
        yield fake


@pytest.fixture
def line(line_server: FakeLine) -> FakeLine:
    line_server.reset()
    return line_server


@pytest.fixture
def slack(slack_server: FakeSlack) -> FakeSlack:
    slack_server.reset()
    return slack_server


@pytest.fixture
async def line_api(line: FakeLine) -> AsyncIterator[AsyncMessagingApi]:
    # Closing the client closes its aiohttp session; warnings are errors in this suite.
    async with AsyncApiClient(Configuration(host=line.url, access_token=LINE_TOKEN)) as client:
        yield AsyncMessagingApi(client)


@pytest.fixture
def web(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=SLACK_TOKEN, base_url=slack.url + "/api/")


def push(text: str, to: str = USER) -> PushMessageRequest:
    return PushMessageRequest(to=to, messages=[TextMessage(text=text)])


def reply(token: str, text: str) -> ReplyMessageRequest:
    return ReplyMessageRequest(reply_token=token, messages=[TextMessage(text=text)])


async def raw_post(url: str, body: Any, timeout: float | None = None, token: str = LINE_TOKEN) -> tuple[int, Any]:
    """POST without the SDK, for bodies it refuses to build or timeouts it does not expose."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url, json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


# ---------------------------------------------------------------------- FakeServer


def test_server_lifecycle_and_records() -> None:
    fake = FakeLine(access_token=LINE_TOKEN)
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.url)
    with pytest.raises(RuntimeError):
        _ = fake.url
    fake.stop()  # idempotent


async def test_recorded_request_fields(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    before = time.time()
    await line_api.push_message(push("hi"))
    (rec,) = line.requests_to("/v2/bot/message/push")
    assert rec.method == "POST"
    assert rec.status == 200
    assert rec.headers["authorization"] == f"Bearer {LINE_TOKEN}"
    assert (rec.json["to"], rec.json["messages"]) == (USER, [{"type": "text", "text": "hi"}])
    assert b'"hi"' in rec.body
    assert before <= rec.at <= time.time()


def test_wait_for_times_out_with_context(line: FakeLine) -> None:
    with pytest.raises(AssertionError, match=r"not met within 0\.05s"):
        line.wait_for(lambda: False, timeout=0.05)
    line.wait_for(lambda: True)


async def test_delay_next_forces_client_timeout_but_is_then_handled(line: FakeLine) -> None:
    line.delay_next("/v2/bot/message/push", 0.3)
    body = {"to": USER, "messages": [{"type": "text", "text": "slow"}]}
    with pytest.raises(asyncio.TimeoutError):
        await raw_post(line.url + "/v2/bot/message/push", body, timeout=0.05)
    # Like the real API, a push the client gave up on may still have been delivered.
    await line.wait_for_async(lambda: len(line.accepted_pushes()) == 1, timeout=2)
    status, _ = await raw_post(line.url + "/v2/bot/message/push", body, timeout=0.2)
    assert status == 200  # the delay was one-shot


async def test_fail_next_pattern_and_permanent_delay(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    line.fail_next("/v2/bot/profile/*", 404, body={"message": "Not found"})
    with pytest.raises(ApiException) as err:
        await line_api.get_profile(USER)
    assert err.value.status == 404
    assert (await line_api.get_profile(USER)).display_name == "テスト太郎"

    line.set_delay("/v2/bot/profile/*", 0.1)
    started = time.monotonic()
    await line_api.get_profile(USER)
    assert time.monotonic() - started >= 0.1
    line.set_delay("/v2/bot/profile/*", 0)
    line.reset()
    assert line.requests == []


async def _push_statuses(line: FakeLine, count: int) -> list[int]:
    body = {"to": USER, "messages": [{"type": "text", "text": "x"}]}
    return [(await raw_post(line.url + "/v2/bot/message/push", body))[0] for _ in range(count)]


async def test_random_failures_follow_their_seed(line: FakeLine) -> None:
    line.fail_randomly("/v2/bot/message/*", 0.3, statuses=(500, 503), seed=7)
    first = await _push_statuses(line, 100)
    assert set(first) == {200, 500, 503}
    assert 15 <= sum(s != 200 for s in first) <= 45
    assert len(line.accepted_pushes()) == first.count(200)  # a failure before handling changes nothing
    assert [r.handled_status for r in line.requests] == [200 if s == 200 else 0 for s in first]
    line.reset()
    line.fail_randomly("/v2/bot/message/*", 0.3, statuses=(500, 503), seed=7)
    assert await _push_statuses(line, 100) == first
    line.fail_randomly("/v2/bot/message/*", 0.3, statuses=(500, 503), seed=8)
    assert await _push_statuses(line, 100) != first
    line.fail_randomly("/v2/bot/message/*", 0)
    assert await _push_statuses(line, 20) == [200] * 20
    assert (await line_api_profile_status(line)) == 200  # other paths never failed


async def line_api_profile_status(line: FakeLine) -> int:
    headers = {"Authorization": f"Bearer {LINE_TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(line.url + f"/v2/bot/profile/{USER}") as r,
    ):
        return r.status


async def test_a_random_failure_after_handling_took_effect(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    line.fail_randomly("/v2/bot/message/push", 1.0, statuses=(502,), seed=1, after_handling=1.0)
    key = str(uuid.uuid4())
    with pytest.raises(ApiException) as err:
        await line_api.push_message(push("landed"), x_line_retry_key=key)
    assert err.value.status == 502
    assert line.texts_to(USER) == ["landed"]  # the child has it although the answer was an error
    (record,) = line.requests
    assert (record.status, record.handled_status) == (502, 200)
    line.fail_randomly("/v2/bot/message/push", 0)
    with pytest.raises(ApiException) as err:
        await line_api.push_message(push("landed"), x_line_retry_key=key)
    assert err.value.status == 409  # the retry finds it accepted
    assert line.texts_to(USER) == ["landed"]


async def test_scripted_failures_come_before_random_ones(slack: FakeSlack, web: AsyncWebClient) -> None:
    slack.fail_randomly("/api/*", 1.0, statuses=(500,), seed=3)
    slack.fail_next("/api/chat.postMessage", 429, headers={"Retry-After": "2"})
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel=CHANNEL, text="x")
    assert (err.value.response.status_code, err.value.response.headers["Retry-After"]) == (429, "2")
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel=CHANNEL, text="x")
    assert (err.value.response.status_code, err.value.response["error"]) == (500, "internal_error")
    assert slack.messages() == []
    slack.reset()  # forgets the random failures too
    await web.chat_postMessage(channel=CHANNEL, text="x")
    assert len(slack.messages(CHANNEL)) == 1


def test_random_failures_refuse_what_is_not_a_share_or_an_error(line: FakeLine) -> None:
    for rate, statuses, after in ((1.5, (500,), 0.0), (0.1, (200,), 0.0), (0.1, (), 0.0), (0.1, (500,), -0.1)):
        with pytest.raises(ValueError):
            line.fail_randomly("/v2/*", rate, statuses=statuses, after_handling=after)


# ---------------------------------------------------------------------- FakeLine


async def test_line_push_retry_key_conflict(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    key = str(uuid.uuid4())
    first = await line_api.push_message_with_http_info(push("こんにちは"), x_line_retry_key=key)
    assert first.status_code == 200
    assert first.data.sent_messages[0].id.isdigit()
    request_id = first.headers["x-line-request-id"]

    with pytest.raises(ApiException) as err:
        await line_api.push_message(push("こんにちは"), x_line_retry_key=key)
    assert err.value.status == 409
    assert err.value.headers["x-line-accepted-request-id"] == request_id
    assert "already accepted" in err.value.body
    assert line.accepted_pushes() == [
        {"to": USER, "messages": [{"type": "text", "text": "こんにちは"}], "retry_key": key}
    ]
    second = await line_api.push_message(push("next"))
    assert int(second.sent_messages[0].id) > int(first.data.sent_messages[0].id)
    assert line.texts_to(USER) == ["こんにちは", "next"]
    assert line.texts_to("Uother") == []


async def test_line_push_text_too_long(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    with pytest.raises(ApiException) as err:
        await line_api.push_message(push("あ" * 6000))
    assert err.value.status == 400
    assert '"property": "messages[0].text"' in err.value.body
    # The limit counts UTF-16 units: 2500 astral emoji are exactly 5000.
    await line_api.push_message(push("😀" * 2500))
    with pytest.raises(ApiException):
        await line_api.push_message(push("😀" * 2500 + "x"))
    assert len(line.accepted_pushes()) == 1


async def test_line_push_validation(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    # The SDK refuses 6 messages client-side, so send this one raw.
    body = {"to": USER, "messages": [{"type": "text", "text": "x"}] * 6}
    status, error = await raw_post(line.url + "/v2/bot/message/push", body)
    assert status == 400
    assert error == {
        "message": "The request body has 1 error(s)",
        "details": [{"message": "Size must be between 1 and 5", "property": "messages"}],
    }
    with pytest.raises(ApiException) as err:
        await line_api.push_message(push("x"), x_line_retry_key="not-a-uuid")
    assert err.value.status == 400
    assert line.accepted_pushes() == []


async def test_line_500_then_success_leaves_no_trace(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    key = str(uuid.uuid4())
    line.fail_next("/v2/bot/message/push", 500)
    with pytest.raises(ApiException) as err:
        await line_api.push_message(push("retry me"), x_line_retry_key=key)
    assert err.value.status == 500
    assert line.accepted_pushes() == []
    # The failed attempt did not consume the retry key.
    await line_api.push_message(push("retry me"), x_line_retry_key=key)
    assert line.texts_to(USER) == ["retry me"]
    assert [r.status for r in line.requests_to("/v2/bot/message/push")] == [500, 200]


async def test_line_reply_tokens_single_use(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    await line_api.reply_message(reply("tok1", "a"))
    with pytest.raises(ApiException) as err:
        await line_api.reply_message(reply("tok1", "b"))
    assert err.value.status == 400
    assert "Invalid reply token" in err.value.body
    line.expire_reply_token("tok2")
    with pytest.raises(ApiException):
        await line_api.reply_message(reply("tok2", "c"))
    assert line.reply_texts() == ["a"]
    assert line.accepted_replies() == [{"reply_token": "tok1", "messages": [{"type": "text", "text": "a"}]}]


async def test_line_misc_endpoints(line: FakeLine, line_api: AsyncMessagingApi) -> None:
    profile = await line_api.get_profile(USER)
    assert (profile.user_id, profile.display_name) == (USER, "テスト太郎")
    await line_api.show_loading_animation(ShowLoadingAnimationRequest(chat_id=USER, loading_seconds=20))
    assert line.requests_to("/v2/bot/chat/loading/start")[-1].status == 202
    assert line.loading_started() == [{"chatId": USER, "loadingSeconds": 20}]

    line.set_content("m1", b"\x89PNG...", "image/png")
    headers = {"Authorization": f"Bearer {LINE_TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(line.url + "/v2/bot/message/m1/content") as resp:
            assert (resp.status, resp.content_type, await resp.read()) == (200, "image/png", b"\x89PNG...")
        async with session.get(line.url + "/v2/bot/message/m2/content") as resp:
            assert resp.status == 404
    assert await raw_post(line.url + "/v2/bot/message/markAsRead", {"chat": {"userId": USER}}) == (200, {})
    assert line.marked_read() == [{"chat": {"userId": USER}}]


async def test_line_rejects_wrong_token(line: FakeLine) -> None:
    async with AsyncApiClient(Configuration(host=line.url, access_token="wrong")) as client:
        with pytest.raises(ApiException) as err:
            await AsyncMessagingApi(client).push_message(push("x"))
    assert err.value.status == 401
    assert "Authentication failed" in err.value.body
    assert line.accepted_pushes() == []


def test_line_paths_exist_in_openapi_spec() -> None:
    spec = reference_file("line-openapi/messaging-api.yml").read_text(encoding="utf-8")
    for _, path in FakeLine.SERVED_PATHS:
        assert f'"{path}":' in spec, f"{path} is not in messaging-api.yml"


# ---------------------------------------------------------------------- FakeSlack


async def test_slack_post_thread_and_metadata_round_trip(slack: FakeSlack, web: AsyncWebClient) -> None:
    meta = {"event_type": "consultation", "event_payload": {"case": "c-1"}}
    root = await web.chat_postMessage(channel=CHANNEL, text="新しい相談", metadata=meta, unfurl_links=False)
    reply = await web.chat_postMessage(channel=CHANNEL, text="返信", thread_ts=root["ts"])
    assert float(reply["ts"]) > float(root["ts"])
    assert root["message"]["metadata"] == meta

    with_meta = await web.conversations_replies(channel=CHANNEL, ts=root["ts"], include_all_metadata=True)
    assert [m["text"] for m in with_meta["messages"]] == ["新しい相談", "返信"]
    assert with_meta["messages"][0]["metadata"] == meta
    assert with_meta["messages"][0]["reply_count"] == 1
    assert with_meta["has_more"] is False
    plain = await web.conversations_replies(channel=CHANNEL, ts=root["ts"])
    assert "metadata" not in plain["messages"][0]

    assert [m["text"] for m in slack.roots(CHANNEL)] == ["新しい相談"]
    assert [m["ts"] for m in slack.thread(CHANNEL, root["ts"])] == [reply["ts"]]
    assert slack.message(root["ts"])["args"]["unfurl_links"] is False
    assert slack.message(reply["ts"])["user"] == "UBRIDGEBOT"

    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel=CHANNEL, text="x", thread_ts="1.000001")
    assert err.value.response["error"] == "thread_not_found"


async def test_slack_form_encoded_json_fields(slack: FakeSlack, web: AsyncWebClient) -> None:
    # Form posts carry blocks/metadata as JSON strings; the fake must decode them.
    meta = {"event_type": "t", "event_payload": {"k": 1}}
    resp = await web.api_call(
        "chat.postMessage",
        data={"channel": CHANNEL, "text": "f", "metadata": '{"event_type":"t","event_payload":{"k":1}}'},
    )
    assert slack.message(resp["ts"])["metadata"] == meta
    assert slack.requests_to("/api/chat.postMessage")[0].json["text"] == "f"


async def test_slack_update_history_and_reactions(slack: FakeSlack, web: AsyncWebClient) -> None:
    msg = await web.chat_postMessage(channel=CHANNEL, text="v1")
    await web.chat_update(channel=CHANNEL, ts=msg["ts"], text="v2")
    assert slack.message(msg["ts"])["text"] == "v2"
    assert [u["text"] for u in slack.updates_of(msg["ts"])] == ["v2"]
    with pytest.raises(SlackApiError, match="message_not_found"):
        await web.chat_update(channel=CHANNEL, ts="1.000001", text="x")

    await web.reactions_add(channel=CHANNEL, timestamp=msg["ts"], name="eyes")
    with pytest.raises(SlackApiError) as err:
        await web.reactions_add(channel=CHANNEL, timestamp=msg["ts"], name="eyes")
    assert err.value.response["error"] == "already_reacted"
    await web.reactions_add(channel=CHANNEL, timestamp=msg["ts"], name="white_check_mark")
    await web.reactions_remove(channel=CHANNEL, timestamp=msg["ts"], name="eyes")
    assert slack.reactions_on(msg["ts"]) == ["white_check_mark"]
    with pytest.raises(SlackApiError, match="no_reaction"):
        await web.reactions_remove(channel=CHANNEL, timestamp=msg["ts"], name="eyes")


async def test_slack_injected_429_surfaces_retry_after(slack: FakeSlack, web: AsyncWebClient) -> None:
    slack.fail_next(
        "/api/chat.postMessage", 429, headers={"Retry-After": "2"}, body={"ok": False, "error": "ratelimited"}
    )
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel=CHANNEL, text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "2"
    assert slack.messages() == []  # the failed call changed nothing
    await web.chat_postMessage(channel=CHANNEL, text="x")
    assert len(slack.messages(CHANNEL)) == 1


async def test_slack_rate_limit_mode(slack: FakeSlack, web: AsyncWebClient) -> None:
    slack.rate_limit("chat.postMessage", per_second=0.01, burst=2, retry_after=3)
    await web.chat_postMessage(channel=CHANNEL, text="1")
    await web.chat_postMessage(channel=CHANNEL, text="2")
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel=CHANNEL, text="3")
    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "3"
    await web.chat_postMessage(channel="C0OTHER", text="other bucket")
    slack.rate_limit("chat.postMessage", None)
    await web.chat_postMessage(channel=CHANNEL, text="4")
    assert [m["text"] for m in slack.messages(CHANNEL)] == ["1", "2", "4"]


async def test_slack_posts_limited_like_slack(slack: FakeSlack, web: AsyncWebClient) -> None:
    """One chat.postMessage per second per channel, bursts of three; then 429 with Retry-After in
    whole seconds, counted; each channel has its own bucket."""
    slack.limit_posts_like_slack()
    for i in range(3):
        await web.chat_postMessage(channel=CHANNEL, text=f"burst {i}")
    refused_at = time.monotonic()
    with pytest.raises(SlackApiError) as err:
        await web.chat_postMessage(channel=CHANNEL, text="one too many")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    assert slack.rate_limited() == slack.rate_limited("chat.postMessage", CHANNEL) == 1
    await web.chat_postMessage(channel="C0OTHER", text="another channel's bucket")
    assert slack.rate_limited("chat.postMessage", "C0OTHER") == 0
    await asyncio.sleep(max(0.0, 1.05 - (time.monotonic() - refused_at)))
    await web.chat_postMessage(channel=CHANNEL, text="a second later")
    with pytest.raises(SlackApiError):
        await web.chat_postMessage(channel=CHANNEL, text="again too soon")
    assert slack.rate_limited() == 2
    assert [m["text"] for m in slack.messages(CHANNEL)] == [*(f"burst {i}" for i in range(3)), "a second later"]


async def test_the_fake_workspace_identity_is_what_the_test_sets() -> None:
    with FakeSlack(bot_token=SLACK_TOKEN, team_id="T0002", app_id="A0002", enterprise_id="E0002") as fake:
        web = AsyncWebClient(token=SLACK_TOKEN, base_url=fake.url + "/api/")
        auth = await web.auth_test()
        assert (auth["team_id"], auth["enterprise_id"], auth["is_enterprise_install"]) == ("T0002", "E0002", False)
        assert (await web.bots_info(bot=auth["bot_id"]))["bot"]["app_id"] == "A0002"


async def test_slack_directory_methods(slack: FakeSlack, web: AsyncWebClient) -> None:
    auth = await web.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBRIDGEBOT", "BBRIDGEBOT", "T0001")
    assert auth.get("enterprise_id") is None  # a workspace outside any Enterprise Grid organisation
    bot = (await web.bots_info(bot="BBRIDGEBOT"))["bot"]
    assert (bot["id"], bot["app_id"], bot["user_id"]) == ("BBRIDGEBOT", "A0001", "UBRIDGEBOT")
    with pytest.raises(SlackApiError, match="bot_not_found"):
        await web.bots_info(bot="BOTHER")
    slack.set_members(CHANNEL, ["UA", "UB"])
    slack.add_user("UA", "alice", "Alice Example")
    slack.set_usergroup("S1", ["UA"])
    assert (await web.conversations_members(channel=CHANNEL))["members"] == ["UA", "UB"]
    user = (await web.users_info(user="UA"))["user"]
    assert (user["name"], user["profile"]["real_name"]) == ("alice", "Alice Example")
    assert (await web.usergroups_users_list(usergroup="S1"))["users"] == ["UA"]
    with pytest.raises(SlackApiError, match="user_not_found"):
        await web.users_info(user="UZ")

    eph = await web.chat_postEphemeral(channel=CHANNEL, user="UA", text="only you")
    assert slack.ephemerals() == [
        {"channel": CHANNEL, "user": "UA", "text": "only you", "blocks": None, "thread_ts": None,
         "message_ts": eph["message_ts"]}
    ]  # fmt: skip
    with pytest.raises(SlackApiError, match="user_not_in_channel"):
        await web.chat_postEphemeral(channel=CHANNEL, user="UZ", text="x")
    with pytest.raises(SlackApiError, match="unknown_method"):
        await web.api_call("no.such.method")


async def test_slack_history_newest_first(slack: FakeSlack, web: AsyncWebClient) -> None:
    a = await web.chat_postMessage(channel=CHANNEL, text="a")
    await web.chat_postMessage(channel=CHANNEL, text="a-reply", thread_ts=a["ts"])
    human = slack.add_message(CHANNEL, "b", user="UHUMAN")
    hist = await web.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in hist["messages"]] == ["b", "a"]
    newer = await web.conversations_history(channel=CHANNEL, oldest=a["ts"])
    assert [m["ts"] for m in newer["messages"]] == [human["ts"]]
    page = await web.conversations_history(channel=CHANNEL, limit=1)
    assert page["has_more"] is True


async def test_slack_invalid_auth(slack: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=slack.url + "/api/")
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await bad.chat_postMessage(channel=CHANNEL, text="x")
    assert slack.messages() == []


def test_fakes_share_the_base_class() -> None:
    assert issubclass(FakeLine, FakeServer)
    assert issubclass(FakeSlack, FakeServer)
