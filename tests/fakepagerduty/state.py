"""The fake PagerDuty's state: incidents, on-call entries, received events, recorded calls, faults.

The server thread and the test thread both touch it, so every access goes through one lock and the
accessors hand out copies.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from tests.fakeslack.faults import Fault, FaultBook

from . import api
from .model import DEFAULT_TOKEN, Call, Result, make_incident, make_oncall


class FakePagerDuty:
    """In-memory PagerDuty for tests.

    Faults use the fake Slack's rules (see ``tests/fakeslack/faults.py``); their ``method`` is an
    fnmatch pattern over ``"<HTTP method> <path>"``, e.g. ``"PUT /incidents/*"``, ``"GET /oncalls"``,
    ``"POST /v2/enqueue"`` or ``"*"``.
    """

    def __init__(self, tokens: tuple[str, ...] = (DEFAULT_TOKEN,)) -> None:
        self._lock = threading.Lock()
        self._initial_tokens = tokens
        self.reset()

    def reset(self) -> None:
        """Forget everything: incidents, on-calls, events, calls and faults."""
        with self._lock:
            self.tokens: set[str] = set(self._initial_tokens)
            self.incidents: dict[str, dict[str, Any]] = {}
            self.oncalls: list[dict[str, Any]] = []
            self.events: list[dict[str, Any]] = []
            self.alerts: dict[tuple[str, str], str] = {}
            self._calls: list[Call] = []
            self._faults = FaultBook()
            self._next_number = 1

    # -- setup -----------------------------------------------------------------------------------------

    def add_incident(self, incident_id: str, status: str = "triggered", **fields: Any) -> dict[str, Any]:
        """Create (or replace) an incident; `fields` override parts of the API object."""
        with self._lock:
            number = fields.pop("incident_number", self._next_number)
            self._next_number = max(self._next_number, number) + 1
            self.incidents[incident_id] = make_incident(incident_id, status, number, **fields)
            return copy.deepcopy(self.incidents[incident_id])

    def set_oncalls(self, entries: list[dict[str, Any]]) -> None:
        """Replace the on-call entries (API-shaped, e.g. from `make_oncall` / `oncall`)."""
        with self._lock:
            self.oncalls = copy.deepcopy(entries)

    @staticmethod
    def oncall(user_id: str, name: str, email: str | None = None, **kw: Any) -> dict[str, Any]:
        """Shorthand for `model.make_oncall`."""
        return make_oncall(user_id, name, email, **kw)

    def add_fault(self, **spec: Any) -> Fault:
        """Install a fault rule, e.g. ``add_fault(method="GET /oncalls", mode="error500", count=2)``."""
        with self._lock:
            return self._faults.add(spec)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- inspection ------------------------------------------------------------------------------------

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.incidents.get(incident_id)
            return copy.deepcopy(found) if found else None

    def alert_status(self, routing_key: str, dedup_key: str) -> str | None:
        """triggered | acknowledged | resolved for an Events API alert, None if never seen."""
        with self._lock:
            return self.alerts.get((routing_key, dedup_key))

    def received_events(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.events)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, path_prefix: str = "/") -> list[Call]:
        """Recorded calls with this HTTP method whose path starts with `path_prefix`."""
        method = method.upper()
        return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    # -- used by the server ----------------------------------------------------------------------------

    def take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            return self._faults.take(operation)

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> Result:
        """Answer one (un-faulted) request and change state accordingly."""
        with self._lock:
            if method == "POST" and path.rstrip("/") == "/v2/enqueue":
                return api.enqueue(self, body)
            return api.rest(self, method, path, query, headers, body)

    def record(
        self,
        request: tuple[str, str, dict[str, list[str]], dict[str, str], Any],
        result: Result | None,
        fault: Fault | None,
        arrival: float,
    ) -> None:
        method, path, query, headers, body = request
        with self._lock:
            self._calls.append(
                Call(
                    index=len(self._calls),
                    method=method,
                    path=path,
                    query=query,
                    headers=headers,
                    body=body,
                    status=result.status if result else None,
                    response=copy.deepcopy(result.body) if result else None,
                    fault=fault.to_dict() if fault else None,
                    at=arrival,
                )
            )
