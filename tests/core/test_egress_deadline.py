"""An outbound call's timeout bounds the whole call: a server that trickles its answer, one byte just before
each read would time out, cannot hold a runtime thread or a webhook worker beyond it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from bundles.language.models import ModelRequest
from core.egress import EgressPolicy, call_deadline, egress_client
from runtime.providers import OpenAICompatibleProvider, ProviderTimeout

LOOPBACK = EgressPolicy.from_entries(["127.0.0.1"])
TRICKLE = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000


@contextmanager
def trickling_server(interval: float = 0.2) -> Iterator[tuple[int, list[float]]]:
    """Serve one byte of a never-ending header every `interval` s to every connection; yield its port."""
    stop = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    closed_after: list[float] = []

    def serve(conn: socket.socket) -> None:
        began = time.monotonic()
        conn.settimeout(5)
        try:
            conn.recv(65536)
            for byte in TRICKLE:
                if stop.is_set():
                    break
                conn.sendall(bytes([byte]))
                time.sleep(interval)
        except OSError:
            closed_after.append(time.monotonic() - began)
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], closed_after
    finally:
        stop.set()
        thread.join(2)
        server.close()


def test_a_trickling_model_endpoint_times_out_within_its_timeout():
    with trickling_server() as (port, _):
        provider = OpenAICompatibleProvider(
            f"http://127.0.0.1:{port}/v1", None, timeout_seconds=1.0, allowed_models=None, egress=LOOPBACK
        )
        began = time.monotonic()
        with pytest.raises(ProviderTimeout):
            provider(ModelRequest(system="", prompt="hi", params={"name": "m"}))
        elapsed = time.monotonic() - began
        provider.close()
    assert elapsed < 1.5, elapsed  # each read alone would wait up to 1 s, the trickle never lets it


def test_a_call_deadline_ends_a_trickle_that_per_read_timeouts_never_would():
    """Reads of 0.5 s each never expire against a byte every 0.2 s; the call's deadline of 1 s does."""
    with trickling_server() as (port, _), egress_client(LOOPBACK, timeout=0.5) as client:
        began = time.monotonic()
        with (
            pytest.raises(httpx.ReadTimeout),
            call_deadline(1.0),
            client.stream("GET", f"http://127.0.0.1:{port}/") as response,
        ):
            response.read()
        elapsed = time.monotonic() - began
    assert 0.9 < elapsed < 1.4, elapsed


def test_a_kept_alive_connection_obeys_the_deadline_of_the_call_that_reuses_it():
    with trickling_server() as (port, _), egress_client(LOOPBACK, timeout=0.5) as client:
        for budget in (0.4, 0.8):
            began = time.monotonic()
            with (
                pytest.raises(httpx.TimeoutException),
                call_deadline(budget),
                client.stream("GET", f"http://127.0.0.1:{port}/") as response,
            ):
                response.read()
            assert time.monotonic() - began < budget + 0.3
