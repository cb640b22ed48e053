"""The fault matrix of docs/reliability.md, one test (or more) per row, against the fake MLflow.
Every test asserts the same three promises: what the proxy acknowledged is delivered (exactly
once, unless the fake answered a request the proxy had already given up on) or dead-lettered
with a reason; nothing it refused was acknowledged; and it serves again by itself once the fault
ends. File-system faults need root (tmpfs and bind mounts); without it they are skipped."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from support.admin import scrape, wait_ready
from support.delivery import numbered_request, post
from support.fake_mlflow import ScriptedAnswer
from support.net import wait_until
from support.proxy_process import ProxyProcess

FAST_RETRY = {"initial_backoff": "50ms", "max_backoff": "300ms"}
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: mounts a tmpfs or bind mount for the spool")
MLFLOW_DOWN = [ScriptedAnswer(503, "{}")] * 100_000


@pytest.fixture
def proxy_teardown() -> str:
    return "kill"  # faults may still be in place: a draining SIGTERM would wait them out


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs, unmounted after the test (lazily: a killed proxy may still hold it)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def disk_config(state: Path, **queue) -> dict:
    return {"mlflow": {"experiment_id": "1"},
            "queue": {"durability": "disk", "state_dir": str(state), "fsync": "always",
                      "retry_after": "1s", **queue},
            "exporter": {"retry": FAST_RETRY, "batch_linger": "0ms"},
            "admin": {"probe_interval": "200ms"}}


class Client:
    """Sends numbered requests and keeps what was acknowledged and how refusals looked."""

    def __init__(self, proxy: ProxyProcess):
        self.proxy = proxy
        self.acknowledged: list[str] = []
        self.refusals: list[tuple[int, dict]] = []

    def send(self, payload_bytes: int = 0, timeout: float = 10.0) -> int:
        request, ids = numbered_request(3, payload_bytes)
        try:
            status, headers = post(self.proxy.host, self.proxy.port, request.SerializeToString(),
                                   timeout=timeout)
        except OSError:
            return 0
        if status == 200:
            self.acknowledged += ids
        else:
            self.refusals.append((status, headers))
        return status

    def send_until_refused(self, payload_bytes: int, limit: int = 2000) -> None:
        for _ in range(limit):
            if self.send(payload_bytes) != 200:
                return
        pytest.fail(f"{limit} requests were all accepted")

    def assert_refusals_retryable(self) -> None:
        for status, headers in self.refusals:
            assert status in (429, 503), status
            assert headers.get("retry-after") == "1", headers

    def accepted_within(self, seconds: float) -> float:
        """Seconds until a request is accepted again (fails after `seconds`)."""
        started = time.monotonic()
        wait_until(lambda: self.send() == 200, seconds, what="a request accepted again")
        return time.monotonic() - started


def assert_delivered_exactly_once(fake, acknowledged: list[str], timeout: float = 30.0,
                                  late_ok: bool = False, resent_ok: frozenset = frozenset()) -> None:
    """Every acknowledged span at the fake; none twice, unless (late_ok) the fake answered a
    request after the proxy had stopped waiting for it, which the proxy then sent again, or the
    span is in `resent_ok`: delivered before a kill -9 that came before the proxy noted it."""
    wait_until(lambda: set(acknowledged) <= set(fake.delivered_span_ids()), timeout,
               what=f"{len(acknowledged)} acknowledged spans at the fake MLflow")
    counts = Counter(fake.delivered_span_ids())
    twice = {sid for sid, n in counts.items() if n > 1}
    if late_ok:
        twice -= {sid for e in fake.delivered() if e.late for sid in e.span_ids()}
    twice -= resent_ok
    assert not twice, f"{len(twice)} spans delivered more than once"


def fill_fs(mount: Path, leave: int = 0) -> Path:
    """Fills the file system with a ballast file, leaving about `leave` bytes free."""
    ballast = mount / "ballast"
    with ballast.open("wb") as f:
        free = shutil.disk_usage(mount).free - leave
        try:
            while free > 0:
                chunk = min(free, 64 * 1024)
                f.write(b"\0" * chunk)
                f.flush()
                free -= chunk
        except OSError:
            pass
    return ballast


# ---- file system full -----------------------------------------------------------------------

@NEEDS_ROOT
def test_fs_full_with_mlflow_down_recovers_without_restart(fake_mlflow, small_fs, proxy_factory):
    fake_mlflow.script = list(MLFLOW_DOWN)
    proxy = proxy_factory(disk_config(small_fs / "state"))
    client = Client(proxy)
    client.send_until_refused(payload_bytes=4000)
    client.send(4000)
    assert len(client.acknowledged) > 100, "the 2 MiB file system filled up too early"
    client.assert_refusals_retryable()
    wait_ready(proxy, False, reason="spool cannot write")
    assert scrape(proxy).value("otlp_mlflow_proxy_spool_write_errors_total", errno="ENOSPC") > 0

    fake_mlflow.script = []  # MLflow is back
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged, timeout=60)
    assert client.accepted_within(5) < 5
    wait_ready(proxy, True, timeout=5)
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged)


@NEEDS_ROOT
def test_fs_full_with_mlflow_up_reclaims_delivered_records(fake_mlflow, small_fs, proxy_factory):
    proxy = proxy_factory(disk_config(small_fs / "state"))
    client = Client(proxy)
    ballast = fill_fs(small_fs, leave=48 * 1024)
    # Each request fits, but all of them together are several times the free space: the spool
    # gets through only by reclaiming what MLflow has confirmed. (A request that comes before
    # the proxy has heard MLflow's answer for the previous one may be refused: it is retried.)
    for _ in range(30):
        wait_until(lambda: client.send(payload_bytes=4000) == 200, 5,
                   what="a request accepted after reclaiming delivered records")
        assert_delivered_exactly_once(fake_mlflow, client.acknowledged, timeout=10)
    client.refusals.clear()

    fill_fs(small_fs)  # now a big request does not fit, not even after reclaiming
    for _ in range(3):
        client.send(payload_bytes=30_000)
    assert client.refusals, "a full file system accepted spans"
    client.assert_refusals_retryable()
    wait_ready(proxy, False, reason="spool cannot write")
    ballast.unlink()
    assert client.accepted_within(5) < 5
    wait_ready(proxy, True, timeout=5)
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged)


@NEEDS_ROOT
def test_fs_full_then_kill_9_restarts_on_the_full_disk_and_delivers(fake_mlflow, small_fs,
                                                                    proxy_factory):
    config = disk_config(small_fs / "state")
    fake_mlflow.script = list(MLFLOW_DOWN)
    proxy = proxy_factory(config, name="full")
    client = Client(proxy)
    client.send_until_refused(payload_bytes=4000)
    client.assert_refusals_retryable()
    proxy.kill()

    # Still full at the restart: the proxy starts anyway and delivers what it holds.
    fake_mlflow.script = []
    restarted = proxy_factory(config, name="restarted")
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged, timeout=60)
    client.proxy = restarted
    assert client.accepted_within(5) < 5


# ---- state directory read-only, removed ---------------------------------------------------

def bind_read_only(path: Path) -> None:
    """A read-only bind mount over `path`: new files there fail with EROFS, while files the
    proxy already holds open stay writable, as when a file system is remounted read-only."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True,
                             text=True)
    if remount.returncode != 0:
        subprocess.run(["umount", str(path)], check=False)
        pytest.fail(f"cannot make {path} read-only: {remount.stderr}")


@NEEDS_ROOT
@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "kill-9"])
def test_state_dir_read_only_then_writable(fake_mlflow, tmp_path, proxy_factory, kill):
    state = tmp_path / "state"
    # A small budget makes small segments (64 KiB): the spool soon needs a new file.
    config = disk_config(state, max_disk_bytes="512KiB")
    proxy = proxy_factory(config, name="ro")
    client = Client(proxy)
    assert client.send(4000) == 200
    # Its ack file opened before the bind mount: a file opened for writing through the new
    # mount would make the remount read-only fail (busy).
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged)
    wait_until(lambda: list(state.glob("*.acks")), 5, what="the first ack file")
    bind_read_only(state)
    try:
        fake_mlflow.script = list(MLFLOW_DOWN) if kill else []
        for _ in range(40):
            client.send(4000)
        assert client.refusals, "a read-only state directory took spans for 40 requests"
        client.assert_refusals_retryable()
        wait_ready(proxy, False, reason="spool cannot write")
        assert scrape(proxy).value("otlp_mlflow_proxy_spool_write_errors_total", errno="EROFS") > 0
        if kill:
            proxy.kill()
    finally:
        subprocess.run(["umount", str(state)], check=True)
    if kill:
        fake_mlflow.script = []
        client.proxy = proxy_factory(config, name="restarted")
    assert client.accepted_within(5) < 5
    wait_ready(client.proxy, True, timeout=5)
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged)


@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "kill-9"])
def test_state_dir_removed_while_running(fake_mlflow, tmp_path, proxy_factory, kill):
    state = tmp_path / "state"
    config = disk_config(state)
    proxy = proxy_factory(config, name="removed")
    client = Client(proxy)
    for _ in range(3):
        assert client.send(1000) == 200
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged)
    shutil.rmtree(state)
    fake_mlflow.script = list(MLFLOW_DOWN) if kill else []
    after = Client(proxy)
    for _ in range(5):
        assert after.send(1000) == 200  # written to the state directory made again
    assert (state / "lock").exists() and list(state.glob("segment-*.spool"))
    if kill:
        proxy.kill()
        fake_mlflow.script = []
        proxy_factory(config, name="restarted")
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged + after.acknowledged)
    assert "was removed while running" in proxy.log_text()


# ---- MLflow faults --------------------------------------------------------------------------

def network_config(state: Path, request_timeout: str = "1s", **queue) -> dict:
    config = disk_config(state, **queue)
    config["mlflow"].update({"request_timeout": request_timeout, "connect_timeout": "500ms"})
    return config


def kill_and_restart(proxy_factory, fake, client: Client, config: dict, end_fault) -> frozenset:
    """kill -9 while the fault holds, end it, start a new proxy on the same spool. Returns the
    spans MLflow had received before the kill: the proxy may not have noted them (the answer
    was on its way, or the ack not yet written), so the restart may send them once more
    (MLflow keeps one copy: spans are stored by id)."""
    client.proxy.kill()
    with fake.lock:
        delivered = frozenset(fake.received)
    end_fault()
    client.proxy = proxy_factory(config, name="restarted")
    return delivered


@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "kill-9"])
def test_mlflow_accepts_connections_but_never_answers(fake_mlflow, tmp_path, proxy_factory, kill):
    config = network_config(tmp_path / "state")
    fake_mlflow.silent.set()
    client = Client(proxy_factory(config))
    for _ in range(5):
        assert client.send(1000) == 200
    wait_until(lambda: scrape(client.proxy).value("otlp_mlflow_proxy_upstream_requests_total",
                                                  status="error") >= 2, 10,
               what="two export attempts timed out")
    assert not fake_mlflow.delivered()
    resent = frozenset()
    if kill:
        resent = kill_and_restart(proxy_factory, fake_mlflow, client, config,
                                  fake_mlflow.silent.clear)
    else:
        fake_mlflow.silent.clear()
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged, resent_ok=resent)
    assert client.accepted_within(5) < 5


@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "kill-9"])
def test_mlflow_answers_one_request_per_second(fake_mlflow, tmp_path, proxy_factory, kill):
    config = network_config(tmp_path / "state", request_timeout="10s", max_bytes="64KiB")
    config["exporter"]["max_batch_spans"] = 3  # one request per export: the slow side shows
    fake_mlflow.min_interval = 1.0
    client = Client(proxy_factory(config))
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        client.send(2000, timeout=5)
    assert client.acknowledged and client.refusals, "the queue never pushed back"
    client.assert_refusals_retryable()

    def end_fault():
        fake_mlflow.min_interval = 0.0
    resent = frozenset()
    if kill:
        resent = kill_and_restart(proxy_factory, fake_mlflow, client, config, end_fault)
    else:
        end_fault()
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged, timeout=40, resent_ok=resent)
    assert client.accepted_within(5) < 5


@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "kill-9"])
def test_mlflow_answers_200_after_a_long_pause(fake_mlflow, tmp_path, proxy_factory, kill):
    config = network_config(tmp_path / "state")
    fake_mlflow.pause = 2.0  # beyond the proxy's 1 s request_timeout
    client = Client(proxy_factory(config))
    for _ in range(3):
        assert client.send(1000) == 200
    wait_until(lambda: len(fake_mlflow.delivered()) >= 2, 15, what="two late answers")

    def end_fault():
        fake_mlflow.pause = 0.0
    resent = frozenset()
    if kill:
        resent = kill_and_restart(proxy_factory, fake_mlflow, client, config, end_fault)
    else:
        end_fault()
    # The proxy never saw those 200s: it sends again, so a span may arrive twice, only ever in a
    # late answer (MLflow stores spans by id: the second copy replaces the first).
    assert_delivered_exactly_once(fake_mlflow, client.acknowledged, late_ok=True, resent_ok=resent)
    assert client.accepted_within(5) < 5


@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "kill-9"])
def test_mlflow_restarts_mid_request(tmp_path, proxy_factory, kill):
    from support.fake_mlflow import FakeMlflow
    old = FakeMlflow().start()
    config = network_config(tmp_path / "state")
    old.accepting.clear()  # requests arrive and wait: the restart cuts them off
    client = Client(proxy_factory(config, mlflow_url=old.url))
    for _ in range(3):
        assert client.send(1000) == 200
    wait_until(lambda: any(r[1] == "/v1/traces" for r in old.requests), 5,
               what="an export in flight")
    old.stop()
    new = FakeMlflow(port=old.port)
    try:
        if kill:
            client.proxy.kill()
            client.proxy = proxy_factory(config, name="restarted", mlflow_url=old.url)
        new.start()
        assert_delivered_exactly_once(new, client.acknowledged)
        assert client.accepted_within(5) < 5
    finally:
        new.stop()
        old.accepting.set()


class BlackholeDns:
    """A name in a hosts file the proxy reads through a private mount namespace, and a name
    server that never answers: removing the name makes every lookup hang until the resolver's
    own timeout."""

    def __init__(self, tmp_path: Path, name: str, resolver_timeout: int):
        import socket
        self.name = name
        self.hosts = tmp_path / "hosts"
        self.resolv = tmp_path / "resolv.conf"
        self.server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.server.bind(("127.0.22.53", 53))  # receives queries, answers none
        self.resolv.write_text(f"nameserver 127.0.22.53\noptions timeout:{resolver_timeout} attempts:1\n")
        self.resolves(True)

    def resolves(self, yes: bool) -> None:
        # Rewritten in place: the bind mount shows this inode.
        self.hosts.write_text("127.0.0.1 localhost\n" + (f"127.0.0.1 {self.name}\n" if yes else ""))

    def wrapper(self, tmp_path: Path, binary: Path) -> Path:
        script = tmp_path / "proxy-in-namespace.sh"
        script.write_text(
            "#!/bin/sh\n"
            f"exec unshare --mount --propagation private sh -c 'mount --bind {self.hosts} /etc/hosts"
            f" && mount --bind {self.resolv} /etc/resolv.conf && exec {binary} \"$@\"' sh \"$@\"\n")
        script.chmod(0o755)
        return script

    def close(self) -> None:
        self.server.close()


@NEEDS_ROOT
@pytest.mark.parametrize("kill", [False, True], ids=["recovers", "kill-9"])
def test_mlflow_name_stops_resolving(tmp_path, proxy_factory, proxy_binary, kill):
    from support.fake_mlflow import FakeMlflow
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) for a private /etc/hosts")
    dns = BlackholeDns(tmp_path, "mlflow-fault.test", resolver_timeout=4)
    old = FakeMlflow().start()
    url = f"http://{dns.name}:{old.port}"
    config = network_config(tmp_path / "state")
    new = None
    try:
        wrapper = dns.wrapper(tmp_path, proxy_binary)
        client = Client(proxy_factory(config, mlflow_url=url, binary=wrapper))
        assert client.send() == 200
        assert_delivered_exactly_once(old, client.acknowledged)

        dns.resolves(False)
        old.stop()  # closes the proxy's connection: the next export must look the name up
        new = FakeMlflow(port=old.port).start()
        errors = scrape(client.proxy).value("otlp_mlflow_proxy_upstream_requests_total",
                                            status="error")
        started = time.monotonic()
        assert client.send() == 200
        # A lookup waits connect_timeout (500 ms), not the resolver's 4 s.
        wait_until(lambda: scrape(client.proxy).value("otlp_mlflow_proxy_upstream_requests_total",
                                                      status="error") > errors, 2.5,
                   what="an export that failed to resolve within connect_timeout")
        assert time.monotonic() - started < 2.5
        wait_ready(client.proxy, False, timeout=5)
        assert "resolve" in client.proxy.log_text()

        if kill:
            client.proxy.kill()
        dns.resolves(True)
        if kill:
            client.proxy = proxy_factory(config, name="restarted", mlflow_url=url, binary=wrapper)
        assert_delivered_exactly_once(new, client.acknowledged[3:], timeout=20)
        assert client.accepted_within(5) < 5
    finally:
        dns.close()
        if new is not None:
            new.stop()
