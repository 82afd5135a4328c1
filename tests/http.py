"""HTTP calls from the tests to the servers they start, through httpx with one TLS context for the whole session.

httpx builds a TLS context for every client it makes (`httpx.get` makes one per call) and loads the CA bundle into
it: about 25 ms of CPU a call, on plain http too, and the tests make about a thousand (readiness polls, load, one
connection per request where the kernel must spread them over workers). Given a built context, a call takes
about 1.5 ms. Each call still opens its own connection, as `httpx.get` does.
"""

from __future__ import annotations

import ssl

import httpx

TLS = ssl.create_default_context()


def get(url: str, **kwargs) -> httpx.Response:
    return httpx.get(url, verify=TLS, **kwargs)


def post(url: str, **kwargs) -> httpx.Response:
    return httpx.post(url, verify=TLS, **kwargs)


def client(**kwargs) -> httpx.Client:
    return httpx.Client(verify=TLS, **kwargs)
