"""HTTP clients for the providers (ntfy, Pushover, Twilio, webhooks, Alertmanager's API) sharing one
TLS configuration: building an SSL context loads the CA bundle, 30-50 ms of CPU, and every client
building its own made the worker's start cost that once per configured provider."""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def async_client(timeout: float, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, verify=_tls(), **kwargs)
