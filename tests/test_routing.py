from bot.core.routing import Route, compile_anchored, route

PLATFORM = Route(match={"team": "platform"}, rotation="platform", line=1)
REDIS = Route(
    match_re={"service": compile_anchored("redis-.*")}, rotation="platform", runbook="redis", line=2
)
AI = Route(
    match={"team": "ai-platform", "severity": "critical"}, rotation="ai-platform", severity="SEV1", line=3
)
DEFAULT = Route(default=True, rotation="fallback", line=4)


def test_label_equality_needs_every_label_to_match() -> None:
    assert route({"team": "platform", "alertname": "X"}, [PLATFORM]) is PLATFORM
    assert route({"team": "ai-platform", "severity": "critical"}, [AI]) is AI
    assert route({"team": "ai-platform", "severity": "warning"}, [AI]) is None
    assert route({"team": "Platform"}, [PLATFORM]) is None  # case-sensitive, like Alertmanager


def test_regex_is_fully_anchored() -> None:
    assert route({"service": "redis-gateway"}, [REDIS]) is REDIS
    assert route({"service": "my-redis-gateway"}, [REDIS]) is None  # no implicit leading .*
    assert route({"service": "redis"}, [REDIS]) is None
    alternation = Route(match_re={"service": compile_anchored("api|web")}, rotation="r")
    assert route({"service": "web"}, [alternation]) is alternation
    assert route({"service": "apiserver"}, [alternation]) is None  # anchoring covers every branch
    assert compile_anchored("a.*").match("abc\n") is None  # `\Z`, not `$`: no trailing newline slips through


def test_missing_label_matches_as_empty_string() -> None:
    optional = Route(match_re={"env": compile_anchored("(prod|)")}, rotation="r")
    assert route({}, [optional]) is optional
    assert route({}, [REDIS]) is None
    assert route({}, [Route(match={"team": ""}, rotation="r")]) is not None


def test_first_match_wins_and_default_catches_the_rest() -> None:
    routes = [REDIS, PLATFORM, AI, DEFAULT]
    assert route({"service": "redis-gateway", "team": "platform"}, routes) is REDIS
    assert route({"service": "api", "team": "platform"}, routes) is PLATFORM
    assert route({"team": "data-platform"}, routes) is DEFAULT
    assert route({"team": "data-platform"}, routes[:-1]) is None


def test_route_carries_runbook_and_severity_through() -> None:
    assert route({"service": "redis-x"}, [REDIS]).runbook == "redis"  # type: ignore[union-attr]
    assert route({"team": "ai-platform", "severity": "critical"}, [AI]).severity == "SEV1"  # type: ignore[union-attr]
