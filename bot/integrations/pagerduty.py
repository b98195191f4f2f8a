"""PagerDuty's REST API v2 and Events API v2, through pdpyras: the only module that imports it.

pdpyras 5.4.1 is its final release; its successor, the `pagerduty` package, keeps the same API, so
moving over is a change to this module alone. Sync on purpose: the worker calls it from a thread.

Retrying is the outbox's job (it honours Retry-After and orders calls per incident), so pdpyras's own
retry loops are switched off and failures are classified the way the Slack adapter does it:
429 (with its Retry-After), 5xx and network errors are recoverable; any other 4xx is not.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests
import urllib3

from bot.core.pagerduty import OnCallEntry

with warnings.catch_warnings():
    # pdpyras warns at import time that it is deprecated in favour of `pagerduty`. We know (see the
    # module docstring) and keep every use of it here; silence exactly that warning, nothing else.
    warnings.filterwarnings("ignore", message=r'The package "pdpyras" is deprecated', category=UserWarning)
    import pdpyras

DEFAULT_API_URL = "https://api.pagerduty.com"
DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_ENQUEUE_PATH = "/v2/enqueue"  # where pdpyras's EventsAPISession posts, relative to its `url`

T = TypeVar("T")


class PagerDutyCallError(Exception):
    """A PagerDuty call that failed; `recoverable` says whether retrying later can help."""

    def __init__(
        self,
        error: str,
        recoverable: bool,
        retry_after: float | None = None,
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.recoverable = recoverable
        self.retry_after = retry_after
        self.status = status  # HTTP status, None for network trouble


class _RateLimited(Exception):
    """Raised from a response hook so pdpyras can't retry a 429 itself (it would, forever)."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__("rate limited")
        self.response = response


def _raise_on_429(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    # pdpyras retries 429 without limit and no retry setting turns that off (pdpyras issue #139);
    # an exception from a requests hook is not one its retry loop catches, so it reaches `_call`.
    if response.status_code == 429:
        raise _RateLimited(response)


def _configure(session: pdpyras.PDSession, timeout: float) -> None:
    session.timeout = timeout
    session.retry = {}  # EventsAPISession retries 5xx by default
    session.max_network_attempts = 0  # first network error raises
    session.hooks["response"].append(_raise_on_429)


def _events_base(events_url: str) -> str:
    """pdpyras wants the Events API host; `PAGERDUTY_EVENTS_URL` may be that or the full enqueue URL."""
    url = events_url.rstrip("/")
    return url.removesuffix(_ENQUEUE_PATH) if url.endswith(_ENQUEUE_PATH) else url


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _describe(response: requests.Response) -> str:
    """`400 Invalid Input Provided (2001): detail; detail` from REST or Events API error bodies."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}".strip()
    error = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        return f"{response.status_code} {error}"
    message = str(error.get("message") or error.get("status") or "")
    code = f" ({error['code']})" if error.get("code") is not None else ""
    details = "; ".join(str(e) for e in error.get("errors") or [])
    return f"{response.status_code} {message}{code}" + (f": {details}" if details else "")


def _classify(operation: str, exc: Exception) -> PagerDutyCallError:
    if isinstance(exc, _RateLimited):
        return PagerDutyCallError(
            f"{operation}: {_describe(exc.response)}", True, _retry_after(exc.response), status=429
        )
    response = getattr(exc, "response", None)
    if response is not None:
        status = response.status_code
        # A 2xx with a body pdpyras can't use is PagerDuty misbehaving, like a 5xx.
        recoverable = status == 429 or status >= 500 or status < 400
        return PagerDutyCallError(f"{operation}: {_describe(response)}", recoverable, status=status)
    cause = exc.__cause__
    if isinstance(cause, requests.RequestException | urllib3.exceptions.HTTPError | OSError):
        return PagerDutyCallError(f"{operation}: network: {type(cause).__name__}", True)
    return PagerDutyCallError(f"{operation}: {exc}", False)  # a client-side mistake (bad URL, ...)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        return None  # an unreadable bound is treated like an open one rather than failing the lookup


def _entry(raw: Mapping[str, Any]) -> OnCallEntry:
    user = raw.get("user") or {}
    schedule = raw.get("schedule") or {}
    policy = raw.get("escalation_policy") or {}
    return OnCallEntry(
        escalation_level=int(raw.get("escalation_level") or 0),
        user_id=str(user.get("id", "")),
        user_summary=str(user.get("summary") or user.get("name") or ""),
        user_email=user.get("email"),  # present only with include[]=users
        start=_when(raw.get("start")),
        end=_when(raw.get("end")),
        schedule_id=schedule.get("id"),
        escalation_policy_id=policy.get("id"),
    )


class PagerDutyClient:
    """The calls the bot makes to PagerDuty; every failure is a `PagerDutyCallError`."""

    def __init__(
        self,
        token: str,
        from_email: str,
        api_url: str = DEFAULT_API_URL,
        events_url: str = DEFAULT_EVENTS_URL,
        timeout: float = 10,
    ) -> None:
        # `From` is required on writes with an account-level token; pdpyras sends `default_from` on all.
        # Without a token there is no session (pdpyras refuses an empty one): REST calls then fail as
        # non-recoverable, while the Events API (which needs only routing keys) still works.
        self._api: pdpyras.APISession | None = None
        if token:
            self._api = pdpyras.APISession(token, default_from=from_email or None)
            self._api.url = api_url.rstrip("/")
            _configure(self._api, timeout)
        self._events_url = _events_base(events_url)
        self._timeout = timeout
        self._events: dict[str, pdpyras.EventsAPISession] = {}  # one session per routing key
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
        with self._lock:
            for session in self._events.values():
                session.close()
            self._events.clear()

    # -- REST API v2 -----------------------------------------------------------------------------------

    def acknowledge(self, incident_id: str) -> str:
        """`PUT /incidents/{id}` to acknowledged; returns the incident's status afterwards."""
        return self._set_status(incident_id, "acknowledged")

    def resolve(self, incident_id: str) -> str:
        """`PUT /incidents/{id}` to resolved. Already resolved counts as done (a retried call may find
        its own earlier success), so this is idempotent."""
        try:
            return self._set_status(incident_id, "resolved")
        except PagerDutyCallError as exc:
            if exc.status == 400 and "already resolved" in exc.error.lower():
                return "resolved"
            raise

    def _set_status(self, incident_id: str, status: str) -> str:
        path = f"/incidents/{quote(incident_id, safe='')}"
        body = {"incident": {"type": "incident_reference", "status": status}}
        api = self._rest(f"PUT {path}")
        incident = self._call(f"PUT {path}", lambda: api.rput(path, json=body))
        return str(incident.get("status", status)) if isinstance(incident, dict) else status

    def oncalls(
        self, schedule_id: str | None = None, escalation_policy_id: str | None = None
    ) -> list[OnCallEntry]:
        """`GET /oncalls` (all pages), with users' emails, optionally for one schedule/policy."""
        params: dict[str, Any] = {"include[]": ["users"]}
        if schedule_id:
            params["schedule_ids[]"] = [schedule_id]
        if escalation_policy_id:
            params["escalation_policy_ids[]"] = [escalation_policy_id]
        api = self._rest("GET /oncalls")
        rows = self._call("GET /oncalls", lambda: list(api.iter_all("/oncalls", params=params)))
        return [_entry(row) for row in rows]

    def _rest(self, operation: str) -> pdpyras.APISession:
        if self._api is None:
            raise PagerDutyCallError(f"{operation}: PAGERDUTY_API_TOKEN is not set", False)
        return self._api

    # -- Events API v2 ---------------------------------------------------------------------------------

    def trigger_event(
        self,
        routing_key: str,
        dedup_key: str,
        summary: str,
        severity: str,
        source: str,
        links: Iterable[Mapping[str, str]] = (),
    ) -> str:
        """Trigger (or update) the alert `dedup_key`; severity is critical|error|warning|info."""
        session = self._events_session(routing_key)
        link_list = [dict(link) for link in links] or None
        return self._call(
            "POST /v2/enqueue trigger",
            lambda: session.trigger(summary, source, dedup_key=dedup_key, severity=severity, links=link_list),
        )

    def acknowledge_event(self, routing_key: str, dedup_key: str) -> str:
        session = self._events_session(routing_key)
        return self._call("POST /v2/enqueue acknowledge", lambda: session.acknowledge(dedup_key))

    def resolve_event(self, routing_key: str, dedup_key: str) -> str:
        session = self._events_session(routing_key)
        return self._call("POST /v2/enqueue resolve", lambda: session.resolve(dedup_key))

    def _events_session(self, routing_key: str) -> pdpyras.EventsAPISession:
        if not routing_key:
            raise PagerDutyCallError("POST /v2/enqueue: empty routing key", False)
        with self._lock:
            session = self._events.get(routing_key)
            if session is None:
                session = pdpyras.EventsAPISession(routing_key)
                session.url = self._events_url
                _configure(session, self._timeout)
                self._events[routing_key] = session
            return session

    @staticmethod
    def _call(operation: str, func: Callable[[], T]) -> T:
        try:
            return func()
        except (_RateLimited, pdpyras.PDClientError, pdpyras.URLError) as exc:
            raise _classify(operation, exc) from exc
        except requests.RequestException as exc:  # defensive: pdpyras normally wraps these
            raise PagerDutyCallError(f"{operation}: network: {type(exc).__name__}", True) from exc


# -- on-call cache -------------------------------------------------------------------------------------
