"""slack-app-manifest.yaml = the code: every Web API method `bot/` calls and every event it handles
is found in the source, and the manifest grants exactly the bot scopes and events they need.

A new Slack call is found automatically (a call whose first argument names a Web API method, such
as `slack.call("files.info", ...)`, or a slack_sdk client method such as `client.views_open(...)`,
followed into the SDK for helpers like `files_upload_v2`); it fails here until NEEDED says which
scope it needs, from the method's page at docs.slack.dev/reference/methods/<method>.
"""

from __future__ import annotations

import ast
import inspect
import re
from functools import cache

import httpx
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakeslack.scopes import ANY, METHOD_SCOPES, POST_WITHOUT_JOINING
from tests.harness import ROOT, Clock, slack_headers, slash_command_body, wait_until

MANIFEST = ROOT / "slack-app-manifest.yaml"
BOT = ROOT / "bot"

# The bot scopes incidentbot needs for each method it calls. Slack lists one scope per kind of
# conversation for Conversations API methods; incidentbot works in public channels (incident
# channels, the announce channel) and DMs (pages), never in private channels or group DMs.
NEEDED: dict[str, frozenset[str]] = {
    name: frozenset(scopes)
    for name, scopes in {
        "auth.test": (),
        "chat.postEphemeral": ("chat:write",),
        # chat:write.public: the announce channel is posted to without the bot joining it.
        "chat.postMessage": ("chat:write", POST_WITHOUT_JOINING),
        "chat.update": ("chat:write",),
        "conversations.archive": ("channels:manage",),
        "conversations.create": ("channels:manage",),
        "conversations.history": ("channels:history", "im:history"),  # incident channels, page DMs
        "conversations.invite": ("channels:manage",),
        "conversations.list": ("channels:read",),  # types=public_channel
        "conversations.members": ("channels:read",),  # who may act in an incident channel
        "conversations.open": ("im:write",),
        "conversations.replies": ("channels:history",),  # the announce thread
        "conversations.setTopic": ("channels:manage",),
        "files.completeUploadExternal": ("files:write",),
        "files.getUploadURLExternal": ("files:write",),
        "files.info": ("files:read",),  # the post-mortem's permalink for the announce thread
        "pins.add": ("pins:write",),
        "users.lookupByEmail": ("users:read.email",),
        "views.open": (),
        # Calls other branches of issues 16/17 are adding (their merge must add these scopes to the
        # manifest, which this test then asks for): re-join/unarchive an incident channel, learn
        # the app id, admins by user group, do-not-disturb when paging.
        "bots.info": ("users:read",),
        "conversations.join": ("channels:join",),
        "conversations.unarchive": ("channels:manage",),
        "dnd.info": ("dnd:read",),
        "usergroups.users.list": ("usergroups:read",),
        "usergroups.list": ("usergroups:read",),  # admin user groups Slack does not know (issue 19)
        "usergroups.users.update": ("usergroups:write",),  # the on-call user group follows handoffs
        "users.info": ("users:read",),
    }.items()
}

# Scopes Slack only grants together with another one.
REQUIRES = {"users:read.email": "users:read"}

# Events the code handles and their scopes (docs.slack.dev/reference/events/<event>).
EVENT_SCOPES = {
    "pin_added": "pins:read",
    "reaction_added": "reactions:read",
    "member_joined_channel": "channels:read",  # public channels; groups:read would add private ones
    "member_left_channel": "channels:read",
}
# Handled only so that Bolt acknowledges them quietly; the app does not subscribe to them.
HANDLED_NOT_SUBSCRIBED = {"message": "messages are not timeline material unless pinned"}


# -- what the code does ---------------------------------------------------------------------------

CLIENT_METHODS = frozenset(
    name for name, value in vars(AsyncWebClient).items() if callable(value) and not name.startswith("_")
)


@cache
def web_api_methods(client_method: str) -> frozenset[str]:
    """The Web API methods a slack_sdk client method calls (helpers like files_upload_v2 call several)."""
    source = inspect.getsource(getattr(AsyncWebClient, client_method))
    found = set(re.findall(r'api_call\(\s*"([\w.]+)"', source))
    for inner in re.findall(r"self\.(\w+)\(", source):
        if inner in CLIENT_METHODS and inner != client_method:
            found |= web_api_methods(inner)
    return frozenset(found)


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _first_str(call: ast.Call) -> str | None:
    first = call.args[0] if call.args else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def called_methods() -> dict[str, set[str]]:
    """Web API method -> where in bot/ it is called (file:line)."""
    found: dict[str, set[str]] = {}
    for path in sorted(BOT.rglob("*.py")):
        where = path.relative_to(ROOT)
        for call in _calls(ast.parse(path.read_text(), str(path))):
            names: set[str] = set()
            named = _first_str(call)  # slack.call("chat.postMessage", ...) or call("files_upload_v2")
            if named and named.replace(".", "_") in CLIENT_METHODS:
                names |= web_api_methods(named.replace(".", "_"))
            if isinstance(call.func, ast.Attribute) and call.func.attr in CLIENT_METHODS:
                names |= web_api_methods(call.func.attr)  # client.views_open(...)
            for name in names:
                found.setdefault(name, set()).add(f"{where}:{call.lineno}")
    return found


def _bolt_registrations(kind: str) -> set[str]:
    """Names registered with `@app.<kind>("name")` (events, commands) anywhere in bot/."""
    names = set()
    for path in BOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for deco in node.decorator_list:
                    if (
                        isinstance(deco, ast.Call)
                        and isinstance(deco.func, ast.Attribute)
                        and deco.func.attr == kind
                        and _first_str(deco)
                    ):
                        names.add(str(_first_str(deco)))
    return names


# -- what the manifest grants ---------------------------------------------------------------------


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def bot_scopes() -> set[str]:
    return set(manifest()["oauth_config"]["scopes"]["bot"])


def kept_scopes() -> set[str]:
    """Scopes whose manifest line justifies keeping them unused: `- scope  # kept: <why>`."""
    return set(re.findall(r"^\s*-\s*([\w:.]+)\s*#\s*kept:", MANIFEST.read_text(), re.MULTILINE))


def needed_scopes() -> dict[str, set[str]]:
    """Scope -> why (methods and events that need it)."""
    why: dict[str, set[str]] = {}
    for method in called_methods():
        for scope in NEEDED.get(method, ()):
            why.setdefault(scope, set()).add(method)
    for event in _bolt_registrations("event"):
        if event in EVENT_SCOPES:
            why.setdefault(EVENT_SCOPES[event], set()).add(f"event {event}")
    if manifest()["features"].get("slash_commands"):
        why.setdefault("commands", set()).add("slash commands")
    for scope, required in REQUIRES.items():
        if scope in why:
            why.setdefault(required, set()).add(f"Slack grants {scope} only with it")
    return why


# -- the checks -----------------------------------------------------------------------------------


def test_the_derivation_finds_the_calls_the_bot_is_known_to_make():
    found = called_methods()
    # Each way of calling Slack is seen: slack.call("..."), the SDK's upload helper, client.<method>().
    for method in ("chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal"):
        assert method in found, method
    assert {"views.open", "chat.postEphemeral"} <= set(found)
    assert "conversations.history" in found  # both as slack.call(...) and client.conversations_history()


def test_every_called_method_has_a_documented_scope():
    unknown = {m: sorted(w) for m, w in called_methods().items() if m not in NEEDED}
    assert not unknown, (
        f"add these methods to NEEDED with their bot scope from docs.slack.dev/reference/methods: {unknown}"
    )


def test_needed_table_agrees_with_slacks_scopes_per_method():
    """NEEDED picks, for the conversation kinds incidentbot uses, among the scopes Slack lists."""
    for method, scopes in NEEDED.items():
        documented = set(METHOD_SCOPES[method].values()) | (
            {POST_WITHOUT_JOINING} if method == "chat.postMessage" else set()
        )
        assert scopes <= documented, (method, scopes, documented)
        if METHOD_SCOPES[method].get(ANY):
            assert scopes >= {METHOD_SCOPES[method][ANY]}, method


def test_manifest_grants_every_needed_scope():
    missing = {scope: sorted(why) for scope, why in needed_scopes().items() if scope not in bot_scopes()}
    assert not missing, f"slack-app-manifest.yaml lacks bot scopes: {missing}"


def test_manifest_grants_no_unused_scope():
    unused = bot_scopes() - set(needed_scopes()) - kept_scopes()
    assert not unused, f"slack-app-manifest.yaml grants scopes nothing uses: {sorted(unused)}"


def test_every_handled_event_is_subscribed_and_nothing_else():
    handled = _bolt_registrations("event")
    subscribed = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert handled, "no @app.event handlers found: the derivation is broken"
    assert handled - set(HANDLED_NOT_SUBSCRIBED) == subscribed
    assert set(EVENT_SCOPES) >= subscribed, "add the event's scope to EVENT_SCOPES"


def test_slash_commands_match_and_everything_points_at_one_url():
    m = manifest()
    declared = {c["command"] for c in m["features"]["slash_commands"]}
    assert declared == _bolt_registrations("command")
    urls = {c["url"] for c in m["features"]["slash_commands"]}
    settings = m["settings"]
    urls |= {settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]}
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")


# -- the fake Slack enforces the same scopes ------------------------------------------------------


def test_fake_slack_answers_missing_scope_like_slack(fake_slack):
    fake = fake_slack.fake
    fake.grant_scopes({"chat:write"})
    answer = fake.api("files.info", file="F0NOPE")
    assert answer == {"ok": False, "error": "missing_scope", "needed": "files:read", "provided": "chat:write"}
    chan = fake.create_channel("public-room")
    assert fake.api("conversations.history", channel=chan.id)["needed"] == "channels:history"
    assert fake.api("conversations.create", name="x-secret", is_private=True)["needed"] == "groups:write"
    assert fake.api("chat.postMessage", channel=chan.id, text="hi")["ok"] is True
    fake.grant_scopes(None)
    assert fake.api("conversations.history", channel=chan.id)["ok"] is True


def test_with_the_manifests_scopes_the_postmortem_is_linked_in_the_announce_thread(
    start_bot, fake_slack, tmp_path
):
    """The finding: without files:read, files.info fails and the announce thread links the channel."""
    fake = fake_slack.fake
    fake.grant_scopes(bot_scopes())
    announce = fake.create_channel("incidents", bot_member=False)  # chat:write.public, no join
    bot = start_bot(clock=Clock(), postmortems_dir=tmp_path / "pm", incident_announce_channel=announce.id)

    def slash(text: str, channel: str) -> None:
        body = slash_command_body("/incident", text, channel=channel)
        r = httpx.post(f"{bot.url}/slack/events", content=body, headers=slack_headers(body), timeout=10)
        assert r.status_code == 200, r.text

    slash("declare Search is down sev2", "C0GENERAL")
    chan = wait_until(
        lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
        15,
        what="incident channel",
    )
    slash("resolve", chan.id)
    slash("close", chan.id)
    upload = wait_until(lambda: next((f for f in fake.files.values() if f.completed), None), 20)

    def link():
        replies = [m for m in fake.messages(announce.id) if m.get("thread_ts")]
        return next((m for m in replies if "Post-mortem" in m["text"]), None)

    reply = wait_until(link, 20, what="post-mortem link in the announce thread")
    assert fake.calls_to("files.info")
    assert upload.to_api()["permalink"] in reply["text"], reply["text"]
    refused = [c for c in fake.calls if (c.response or {}).get("error") == "missing_scope"]
    assert not refused, [(c.method, c.response) for c in refused]


def test_needed_keys_are_real_slack_methods():
    for method in NEEDED:
        assert method.replace(".", "_") in CLIENT_METHODS, method
