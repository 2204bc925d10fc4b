"""The egress policy: which addresses outbound calls (model endpoints, webhooks) may reach.

By default only globally routable addresses may be reached: private, loopback, link-local, multicast,
unspecified, shared (CGNAT), reserved and documentation ranges, cloud metadata addresses and the IPv4-mapped,
NAT64 and 6to4 forms of those are refused, and so are cloud metadata host names. A deployment allows more with
``settings.CONTRACTOR["EGRESS_ALLOW"]`` (env ``CONTRACTOR_EGRESS_ALLOW``): IP addresses or networks, each
optionally with a port (``10.0.0.0/8``, ``127.0.0.1:8002``, ``[::1]:8002``). Host names are never entries: a
name is judged by the addresses it resolves to.

The check happens where the connection is opened (``EgressNetworkBackend.connect_tcp``): the name is resolved
once, every address is checked, and the socket goes to a checked address, so a second DNS answer cannot slip
another address in. TLS still verifies the certificate for the URL's name (httpcore starts TLS with it), the
Host header is the URL's, redirects are not followed and no proxy is used. ``url_refusal`` checks a URL's
literal host when an operator saves it, with the reason spelled out; at connect time every refusal reads the
same ``EGRESS_REFUSED`` and every transport failure ``ENDPOINT_UNREACHABLE``, so that outbound calls cannot
be used to map the private network.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IPAddress]]

EGRESS_REFUSED = "refused by egress policy"
ENDPOINT_UNREACHABLE = "the endpoint could not be reached"
HTTP_STATUS = "HTTP {status}"
URL_REFUSED = "{refused}: {host} port {port} is {kind} address, which this deployment does not allow"
METADATA_NAME_REFUSED = "{refused}: {host} is a cloud metadata host name"
UNPARSABLE_URL_REFUSED = "{refused}: the URL's host cannot be parsed"
BAD_ENTRY = (
    "CONTRACTOR_EGRESS_ALLOW entry {entry!r} is not an IP address or network with an optional port "
    "(e.g. 10.0.0.0/8, 10.1.2.3:8000, [fd00::1]:8000)"
)
UNSAFE_ALLOW = (
    "CONTRACTOR_EGRESS_ALLOW opens loopback, link-local, unspecified or cloud metadata addresses "
    "({entries}); set CONTRACTOR_EGRESS_ALLOW_UNSAFE=1 if that is meant"
)

DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.packet.net",
        "metadata.platformequinix.com",
        "metadata.tencentyun.com",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
LOOPBACK_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
# Ranges that are not globally routable, named for the operator's error message (checked after loopback,
# link-local, multicast and unspecified, which ipaddress names itself).
SPECIAL_NETWORKS = tuple(
    (ipaddress.ip_network(network), kind)
    for network, kind in (
        ("0.0.0.0/8", "this-network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("240.0.0.0/4", "reserved"),
        ("::/8", "reserved"),
        ("64:ff9b:1::/48", "local NAT64"),
        ("100::/64", "discard"),
        ("2001::/23", "IETF protocol"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "private (unique local)"),
        ("fec0::/10", "site-local"),
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Entries that open these need CONTRACTOR_EGRESS_ALLOW_UNSAFE=1 in production.
UNSAFE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128")
) + tuple(ipaddress.ip_network(address) for address in METADATA_ADDRESSES)
# The numeric host forms inet_aton accepts: 2130706433, 0x7f000001, 0177.0.0.1, 127.1, ...
LEGACY_IPV4 = re.compile(r"\A(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\Z", re.IGNORECASE)
ENTRY_WITH_PORT = re.compile(
    r"\A\[(?P<v6>[^\]]+)\]:(?P<v6port>[0-9]{1,5})\Z|\A(?P<v4>[^:]+):(?P<v4port>[0-9]{1,5})\Z"
)


class EgressRefused(Exception):
    """The destination of an outbound connection is not allowed by the egress policy."""


@dataclass(frozen=True)
class AllowEntry:
    """One allowed destination: an IP network, on any port or on one."""

    network: IPNetwork
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """Return the entry written `text`; raise ValueError naming it when it is not one."""
        match = ENTRY_WITH_PORT.match(text.strip())
        host, port = text.strip(), None
        if match:
            host = match["v6"] or match["v4"]
            port = int(match["v6port"] or match["v4port"])
        try:
            network = ipaddress.ip_network(host, strict=True)
        except ValueError:
            raise ValueError(BAD_ENTRY.format(entry=text)) from None
        if port is not None and not 0 < port < 65536:
            raise ValueError(BAD_ENTRY.format(entry=text))
        return cls(network, port)

    def covers(self, address: IPAddress, port: int) -> bool:
        """Return whether this entry allows `address` on `port`."""
        return (
            address.version == self.network.version
            and address in self.network
            and (self.port is None or self.port == port)
        )


@dataclass(frozen=True)
class EgressPolicy:
    """Public addresses plus the allowed entries; the empty policy is the production default."""

    allow: tuple[AllowEntry, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> EgressPolicy:
        """Return the policy allowing `entries`; raise ValueError naming the first unreadable one."""
        return cls(tuple(AllowEntry.parse(entry) for entry in entries if entry.strip()))

    def allows(self, address: IPAddress, port: int) -> bool:
        """Return whether a connection to `address` on `port` may be opened."""
        address = normalized(address)
        return non_public_kind(address) is None or any(entry.covers(address, port) for entry in self.allow)

    def checked_addresses(self, host: str, port: int, resolver: Resolver) -> list[IPAddress]:
        """Return the allowed addresses of `host` (resolved once, in order); raise EgressRefused if none."""
        name = host.rstrip(".").lower()
        if name in METADATA_HOSTS:
            raise EgressRefused(EGRESS_REFUSED)
        candidates = literal_or_localhost(name)
        if candidates is None:
            candidates = resolver(host, port)
        allowed = [address for address in map(normalized, candidates) if self.allows(address, port)]
        if not allowed:
            raise EgressRefused(EGRESS_REFUSED)
        return list(dict.fromkeys(allowed))


def normalized(address: IPAddress) -> IPAddress:
    """Return `address`, an IPv4-mapped IPv6 address as the IPv4 address it is."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv4-mapped, NAT64 or 6to4 address reaches, or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def non_public_kind(address: IPAddress) -> str | None:
    """Return what kind of non-public address `address` is ("loopback", "private", ...), or None if public."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    embedded = embedded_ipv4(address) if address.version == 6 else None
    if embedded is not None:  # the IPv4 address an IPv4-mapped, NAT64 or 6to4 address reaches decides
        return non_public_kind(embedded)
    for network, kind in SPECIAL_NETWORKS:
        if address.version == network.version and address in network:
            return kind
    if address.is_private or not address.is_global:
        return "non-routable"
    return None


def literal_address(host: str) -> IPAddress | None:
    """Return the IP address `host` spells, in any form the C library accepts (0x7f000001, 127.1), or None."""
    candidate = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if LEGACY_IPV4.match(candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


def is_localhost(name: str) -> bool:
    """Return whether `name` is `localhost` or under it, which always means loopback (RFC 6761)."""
    name = name.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def literal_or_localhost(name: str) -> list[IPAddress] | None:
    """Return the addresses `name` stands for without DNS (an IP literal, a localhost name), or None."""
    literal = literal_address(name)
    if literal is not None:
        return [literal]
    if is_localhost(name):
        return list(LOOPBACK_ADDRESSES)
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Return the addresses `host` resolves to for a TCP connection (one look-up); raise OSError if none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def url_refusal(url: str, policy: EgressPolicy | None = None) -> str | None:
    """Return why the egress policy refuses `url`'s literal host (an address, localhost, metadata), or None.

    Names other than those are accepted here and checked when a connection is opened (DNS can change).
    """
    policy = deployment_policy() if policy is None else policy
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        return UNPARSABLE_URL_REFUSED.format(refused=EGRESS_REFUSED)
    port = parsed.port or DEFAULT_PORTS.get(parsed.scheme, 80)
    name = host.rstrip(".").lower()
    if name in METADATA_HOSTS:
        return METADATA_NAME_REFUSED.format(refused=EGRESS_REFUSED, host=host)
    candidates = literal_or_localhost(name) or []
    if not candidates or any(policy.allows(address, port) for address in candidates):
        return None
    kind = non_public_kind(normalized(candidates[0])) or "non-routable"
    article = "an" if kind[0] in "aeiou" else "a"
    return URL_REFUSED.format(refused=EGRESS_REFUSED, host=host, port=port, kind=f"{article} {kind}")


def unsafe_entries(entries: Iterable[str]) -> list[str]:
    """Return the allow entries that open loopback, link-local, unspecified or cloud metadata addresses."""
    unsafe = []
    for text in entries:
        network = AllowEntry.parse(text).network
        if any(network.version == other.version and network.overlaps(other) for other in UNSAFE_NETWORKS):
            unsafe.append(text)
    return unsafe


def url_entries(url: str) -> list[str]:
    """Return the allow entries that open exactly the address and port of `url` (the dev model's URL)."""
    if not url:
        return []
    parsed = httpx.URL(url)
    port = parsed.port or DEFAULT_PORTS.get(parsed.scheme, 80)
    addresses = literal_or_localhost(parsed.raw_host.decode("ascii")) or []
    return [f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}" for address in addresses]


@functools.lru_cache(maxsize=16)
def policy_of(entries: tuple[str, ...]) -> EgressPolicy:
    """Return the policy of these allow entries (parsed once)."""
    return EgressPolicy.from_entries(entries)


def deployment_policy() -> EgressPolicy:
    """Return the policy of ``settings.CONTRACTOR["EGRESS_ALLOW"]``; without Django settings, the default."""
    from django.conf import settings

    entries = settings.CONTRACTOR.get("EGRESS_ALLOW", ()) if settings.configured else ()
    return policy_of(tuple(entries))


# --- a total deadline for outbound calls --------------------------------------------------------------------

# httpx's timeouts bound each connect, read and write, not the call: a server that sends one byte of its
# headers just before each read timeout would hold the caller for ever. Inside `call_deadline`, every network
# operation of outbound connections (new or kept alive) waits at most what is left of the call's budget.
DEADLINE: ContextVar[float | None] = ContextVar("egress_deadline", default=None)


@contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """Bound every outbound connect, read and write made inside to `seconds` in total (ReadTimeout & co)."""
    token = DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        DEADLINE.reset(token)


def bounded_timeout(timeout: float | None, expired: type[Exception]) -> float | None:
    """Return `timeout` cut to what is left of the current call's deadline; raise `expired` when none is."""
    deadline = DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("the call's total time budget is spent")
    return remaining if timeout is None else min(timeout, remaining)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation also respects the current call's deadline."""

    def __init__(self, stream: httpcore.NetworkStream):
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, bounded_timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, bounded_timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        timeout = bounded_timeout(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)


class EgressNetworkBackend(httpcore.SyncBackend):
    """Open TCP connections only to addresses the policy allows, resolving each name once.

    ``resolver`` (None: ``resolve``, the system's, looked up at connect time) is where DNS answers come from.
    """

    def __init__(self, policy: EgressPolicy, resolver: Resolver | None = None):
        self.policy = policy
        self.resolver = resolver

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        """Return a connection to the first reachable allowed address of `host`; raise EgressRefused."""
        try:
            addresses = self.policy.checked_addresses(host, port, self.resolver or resolve)
        except OSError as failure:  # the name does not resolve
            raise httpcore.ConnectError(str(failure)) from failure
        for address in addresses[:-1]:
            try:
                return self.connected(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return self.connected(str(addresses[-1]), port, timeout, local_address, socket_options)

    def connected(self, address, port, timeout, local_address, socket_options) -> httpcore.NetworkStream:
        """Return a stream to `address` opened within the call's deadline, bound by it afterwards too."""
        timeout = bounded_timeout(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(super().connect_tcp(address, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        """Refuse: outbound calls go to network addresses only."""
        raise EgressRefused(EGRESS_REFUSED)


class EgressTransport(httpx.HTTPTransport):
    """httpx's HTTP/1.1 transport over a connection pool whose every connection passes the egress policy.

    No proxy (it would resolve the name itself) and no connection retries (model calls and webhook POSTs are
    not idempotent).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        resolver: Resolver | None = None,
    ):
        limits = limits or httpx.Limits()
        # HTTPTransport.__init__ builds its pool without a network backend argument (and is not called here:
        # it would build a second pool); build the same pool with ours. handle_request works on self._pool.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=0,
            network_backend=EgressNetworkBackend(policy, resolver),
        )


def egress_client(
    policy: EgressPolicy | None = None,
    *,
    limits: httpx.Limits | None = None,
    verify: ssl.SSLContext | bool = True,
    resolver: Resolver | None = None,
    **options,
) -> httpx.Client:
    """Return an httpx client whose connections pass `policy` (default: the deployment's); no redirects."""
    policy = deployment_policy() if policy is None else policy
    return httpx.Client(
        transport=EgressTransport(policy, limits=limits, verify=verify, resolver=resolver),
        trust_env=False,
        follow_redirects=False,
        **options,
    )
