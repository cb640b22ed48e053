"""The proxy's admin endpoint from tests: GET a path, scrape and parse /metrics with the
reference parser (prometheus_client), wait for a readiness state."""
from __future__ import annotations

import http.client

from prometheus_client.parser import text_string_to_metric_families

from .net import wait_until


def admin_get(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


class Metrics:
    """Samples of one scrape: value(name, **labels) -> float (the labels must match exactly)."""

    def __init__(self, text: str):
        self.text = text
        self.samples: dict[tuple[str, frozenset], float] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels) -> float:
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            raise KeyError(f"no sample {name}{labels} in:\n{self.text}")
        return self.samples[key]

    def total(self, name: str, **labels) -> float:
        """Sum over every sample of `name` whose labels include `labels`."""
        return sum(v for (n, ls), v in self.samples.items()
                   if n == name and set(labels.items()) <= set(ls))


def scrape(proxy) -> Metrics:
    status, body, headers = admin_get(proxy.host, proxy.admin_port, "/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return Metrics(body)


def readiness(proxy) -> tuple[int, str]:
    status, body, _ = admin_get(proxy.host, proxy.admin_port, "/readyz")
    return status, body


def wait_ready(proxy, ready: bool, timeout: float = 15.0, reason: str | None = None) -> str:
    """Waits until /readyz says `ready` (and, when not ready, names `reason`); returns the body."""
    def check():
        status, body = readiness(proxy)
        if ready and status == 200:
            return body
        if not ready and status == 503 and (reason is None or reason in body):
            return body
        return None
    return wait_until(check, timeout, what=f"/readyz {'ready' if ready else 'not ready'}"
                                            f"{'' if reason is None else ' with ' + repr(reason)}")
