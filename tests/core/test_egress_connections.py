"""Connections through the egress policy, on loopback only: what is refused never reaches a socket, and an
allowed name is connected to the very address that was checked, with its Host header and TLS name intact."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.egress import EGRESS_REFUSED, EgressPolicy, EgressRefused, egress_client

PRODUCTION = EgressPolicy()


@contextmanager
def listener(host: str = "127.0.0.1", port: int = 0) -> Iterator[socket.socket]:
    """Listen on `host`:`port` without accepting: a connection attempt shows up in `accepted_count`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, port))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def accepted_count(sock: socket.socket) -> int:
    """Return how many connections reached `sock` (and close them)."""
    count = 0
    while True:
        try:
            connection, _ = sock.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


class Server:
    """A loopback HTTP(S) server answering `status` and recording each request's Host header and SNI name."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, tls=None):
        self.hosts: list[str] = []
        self.server_names: list[str | None] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                recorder.hosts.append(self.headers["Host"])
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class Resolver:
    """A DNS stand-in (tests never ask real DNS): each look-up of a name returns its next answer."""

    def __init__(self, answers: dict[str, list[list[str]]]):
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int):
        self.lookups.append(host)
        remaining = self.answers.get(host, [[]])
        answer = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return [ipaddress.ip_address(address) for address in answer]


LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "0x7f000001",
    "2130706433",
    "127.1",
    "[::ffff:127.0.0.1]",
    "good@127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "models.localhost",
    "0.0.0.0",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_the_production_default_refuses_every_spelling_of_loopback_before_connecting(host):
    resolver = Resolver({})
    with listener() as sock, egress_client(PRODUCTION, resolver=resolver) as client:
        port = sock.getsockname()[1]
        with pytest.raises(EgressRefused, match=f"^{EGRESS_REFUSED}$"):
            client.get(f"http://{host}:{port}/")
        assert accepted_count(sock) == 0
    assert resolver.lookups == []


def test_the_production_default_refuses_ipv6_loopback_before_connecting():
    with listener("::1") as sock, egress_client(PRODUCTION) as client:
        with pytest.raises(EgressRefused):
            client.get(f"http://[::1]:{sock.getsockname()[1]}/")
        assert accepted_count(sock) == 0


def test_a_name_that_resolves_to_loopback_is_refused_before_connecting():
    resolver = Resolver({"innocent.test": [["127.0.0.1"]]})
    with listener() as sock, egress_client(PRODUCTION, resolver=resolver) as client:
        with pytest.raises(EgressRefused):
            client.get(f"http://innocent.test:{sock.getsockname()[1]}/")
        assert accepted_count(sock) == 0
    assert resolver.lookups == ["innocent.test"]


def test_metadata_names_are_refused_without_a_lookup():
    resolver = Resolver({"metadata.google.internal": [["127.0.0.1"]]})
    with egress_client(PRODUCTION, resolver=resolver) as client:
        for url in ("http://metadata.google.internal/computeMetadata/v1/", "http://Metadata./"):
            with pytest.raises(EgressRefused):
                client.get(url)
    assert resolver.lookups == []


def test_an_allowed_name_is_connected_to_the_checked_address_and_a_new_answer_is_checked_again():
    with Server() as server, listener("127.0.0.2", server.port) as elsewhere:
        policy = EgressPolicy.from_entries([f"127.0.0.1:{server.port}"])
        # The first answer lists a refused address first; the next (a rebinding) only a refused one.
        resolver = Resolver({"model.test": [["127.0.0.2", "127.0.0.1"], ["127.0.0.2"]]})
        url = f"http://model.test:{server.port}/v1"
        with egress_client(policy, resolver=resolver) as client:
            assert client.get(url).status_code == 200
            assert client.get(url).status_code == 200  # the kept-alive connection: no second look-up
        assert resolver.lookups == ["model.test"]
        assert server.hosts == [f"model.test:{server.port}"] * 2
        with egress_client(policy, resolver=resolver) as client, pytest.raises(EgressRefused):
            client.get(url)
        assert resolver.lookups == ["model.test", "model.test"]
        assert accepted_count(elsewhere) == 0


def certificate_for(name: str) -> tuple[bytes, bytes]:
    """Return a self-signed certificate for `name` and its private key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def tls_server(tmp_path):
    """Return a function starting a loopback HTTPS server whose certificate names `name`; and a client
    TLS context trusting that certificate."""

    def start(name: str) -> tuple[Server, ssl.SSLContext]:
        certificate, key = certificate_for(name)
        (tmp_path / "cert.pem").write_bytes(certificate)
        (tmp_path / "key.pem").write_bytes(key)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        client_context = ssl.create_default_context(cadata=certificate.decode())
        return Server(tls=server_context), client_context

    return start


def test_tls_keeps_the_name_for_sni_and_certificate_verification(tls_server):
    server, trusted = tls_server("model.test")
    with server:
        policy = EgressPolicy.from_entries([f"127.0.0.1:{server.port}"])
        resolver = Resolver({"model.test": [["127.0.0.1"]]})
        with egress_client(policy, resolver=resolver, verify=trusted) as client:
            assert client.get(f"https://model.test:{server.port}/v1").status_code == 200
    assert server.server_names == ["model.test"]
    assert server.hosts == [f"model.test:{server.port}"]


def test_a_certificate_for_another_name_is_refused(tls_server):
    server, trusted = tls_server("other.test")
    with server:
        policy = EgressPolicy.from_entries([f"127.0.0.1:{server.port}"])
        resolver = Resolver({"model.test": [["127.0.0.1"]]})
        with (
            egress_client(policy, resolver=resolver, verify=trusted) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.get(f"https://model.test:{server.port}/v1")
    assert server.hosts == []


def test_redirects_are_not_followed():
    with listener() as target:
        location = f"http://127.0.0.1:{target.getsockname()[1]}/internal"
        with Server(302, {"Location": location}) as server:
            policy = EgressPolicy.from_entries([f"127.0.0.1:{server.port}"])
            with egress_client(policy) as client:
                assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 302
        assert accepted_count(target) == 0


def test_proxy_settings_of_the_environment_are_ignored(monkeypatch):
    with listener() as proxy, Server() as server:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        policy = EgressPolicy.from_entries([f"127.0.0.1:{server.port}"])
        with egress_client(policy) as client:
            assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 200
        assert accepted_count(proxy) == 0
