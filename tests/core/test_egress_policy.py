"""The egress policy on paper: which destinations it refuses by default, what entries open, what names say.

Nothing here opens a connection or asks DNS: literal hosts, localhost and metadata names are judged without a
look-up, and every other name goes to a resolver the test supplies.
"""

import ipaddress

import pytest

from core.egress import (
    BAD_ENTRY,
    EGRESS_REFUSED,
    METADATA_NAME_REFUSED,
    UNPARSABLE_URL_REFUSED,
    URL_REFUSED,
    AllowEntry,
    EgressPolicy,
    EgressRefused,
    non_public_kind,
    unsafe_entries,
    url_entries,
    url_refusal,
)

PRODUCTION = EgressPolicy()
FULLWIDTH_METADATA = "http://\uff4d\uff45\uff54\uff41\uff44\uff41\uff54\uff41.google.internal/"

REFUSED_URLS = [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", 80, "a cloud metadata"),
    ("http://127.0.0.1:5432/", "127.0.0.1", 5432, "a loopback"),
    ("http://[::1]:6379/", "::1", 6379, "a loopback"),
    ("http://0x7f000001/", "0x7f000001", 80, "a loopback"),
    ("http://2130706433/", "2130706433", 80, "a loopback"),
    ("http://127.1/", "127.1", 80, "a loopback"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", 80, "a loopback"),
    ("http://good@127.0.0.1/", "127.0.0.1", 80, "a loopback"),
    ("http://localhost:8002/v1", "localhost", 8002, "a loopback"),
    ("http://models.localhost/v1", "models.localhost", 80, "a loopback"),
    ("http://LOCALHOST./", "localhost.", 80, "a loopback"),
    ("https://10.1.2.3/v1", "10.1.2.3", 443, "a private"),
    ("http://172.16.0.9/", "172.16.0.9", 80, "a private"),
    ("http://192.168.1.1/", "192.168.1.1", 80, "a private"),
    ("http://100.64.0.1/", "100.64.0.1", 80, "a shared (CGNAT)"),
    ("http://100.100.100.200/", "100.100.100.200", 80, "a cloud metadata"),
    ("http://198.18.0.1/", "198.18.0.1", 80, "a benchmarking"),
    ("http://224.0.0.1/", "224.0.0.1", 80, "a multicast"),
    ("http://255.255.255.255/", "255.255.255.255", 80, "a reserved"),
    ("http://0.0.0.0:8000/", "0.0.0.0", 8000, "an unspecified"),
    ("http://0/", "0", 80, "an unspecified"),
    ("http://[::]/", "::", 80, "an unspecified"),
    ("http://[fe80::1]/", "fe80::1", 80, "a link-local"),
    ("http://[fc00::1]/", "fc00::1", 80, "a private (unique local)"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254", 80, "a cloud metadata"),
    ("http://[ff02::1]/", "ff02::1", 80, "a multicast"),
    ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", 80, "a loopback"),
    ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", 80, "a cloud metadata"),
    ("http://[2002:7f00:1::]/", "2002:7f00:1::", 80, "a loopback"),
    ("http://[2002:c0a8:101::]/", "2002:c0a8:101::", 80, "a private"),
]


def test_the_production_default_refuses_every_non_public_literal_with_its_reason():
    refusals = {url: url_refusal(url, PRODUCTION) for url, *_ in REFUSED_URLS}
    expected = {
        url: URL_REFUSED.format(refused=EGRESS_REFUSED, host=host, port=port, kind=f"{kind}")
        for url, host, port, kind in REFUSED_URLS
    }
    assert refusals == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal"),
        ("http://METADATA.Google.Internal./", "metadata.google.internal."),
        ("http://metadata/", "metadata"),
        ("http://metadata.goog/", "metadata.goog"),
        ("http://instance-data/latest/", "instance-data"),
    ],
)
def test_cloud_metadata_host_names_are_refused_by_name(url, host):
    assert url_refusal(url, PRODUCTION) == METADATA_NAME_REFUSED.format(refused=EGRESS_REFUSED, host=host)


@pytest.mark.parametrize(
    "url",
    ["http://0177.0.0.1/", "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", FULLWIDTH_METADATA, "http://[::1/"],
)
def test_hosts_the_http_client_cannot_parse_are_refused(url):
    assert url_refusal(url, PRODUCTION) == UNPARSABLE_URL_REFUSED.format(refused=EGRESS_REFUSED)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "http://8.8.8.8/",
        "http://[2001:4860:4860::8888]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[64:ff9b::808:808]/",
        "https://hooks.example/x",
    ],
)
def test_public_addresses_and_names_pass_the_literal_check(url):
    assert url_refusal(url, PRODUCTION) is None


def test_an_entry_opens_exactly_its_network_and_port():
    policy = EgressPolicy.from_entries(["127.0.0.1:8002", "10.0.0.0/8", "[::1]:8003"])
    assert url_refusal("http://127.0.0.1:8002/v1", policy) is None
    assert url_refusal("http://localhost:8002/v1", policy) is None  # one of localhost's addresses is open
    assert url_refusal("http://10.9.8.7:1234/", policy) is None
    assert url_refusal("http://[::1]:8003/", policy) is None
    assert url_refusal("http://127.0.0.1:8003/", policy) is not None
    assert url_refusal("http://127.0.0.2:8002/", policy) is not None
    assert url_refusal("http://192.168.0.1/", policy) is not None
    assert url_refusal("http://169.254.169.254/", policy) is not None


@pytest.mark.parametrize(
    "entry", ["localhost:8002", "models.internal", "10.0.0.1/8", "1.2.3.4:0", "[::1]:99999"]
)
def test_an_allow_entry_is_an_address_or_network_never_a_name(entry):
    with pytest.raises(ValueError, match="is not an IP address or network") as raised:
        AllowEntry.parse(entry)
    assert str(raised.value) == BAD_ENTRY.format(entry=entry)


def test_entries_that_open_loopback_link_local_or_metadata_are_unsafe():
    entries = ["10.0.0.0/8", "203.0.113.7:443", "127.0.0.1:8002", "0.0.0.0/0", "::/0", "169.254.169.254"]
    entries += ["fd00::/8", "[fd12::1]:80", "169.254.0.0/16"]
    assert unsafe_entries(entries) == [
        "127.0.0.1:8002",
        "0.0.0.0/0",
        "::/0",
        "169.254.169.254",
        "fd00::/8",
        "169.254.0.0/16",
    ]


def test_the_dev_model_url_opens_its_own_address_only():
    assert url_entries("http://127.0.0.1:8002/v1") == ["127.0.0.1:8002"]
    assert url_entries("http://localhost:9000/v1") == ["127.0.0.1:9000", "[::1]:9000"]
    assert url_entries("") == []


class Resolver:
    """A DNS stand-in: answers `answers[name]` and counts the look-ups."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int):
        self.lookups.append(host)
        return [ipaddress.ip_address(address) for address in self.answers.get(host, [])]


def test_a_name_resolving_to_loopback_is_refused_after_resolution():
    resolver = Resolver(
        {"innocent.example": ["127.0.0.1"], "mixed.example": ["10.0.0.1", "::ffff:127.0.0.1"]}
    )
    for name in ("innocent.example", "mixed.example"):
        with pytest.raises(EgressRefused, match=f"^{EGRESS_REFUSED}$"):
            PRODUCTION.checked_addresses(name, 80, resolver)
    assert resolver.lookups == ["innocent.example", "mixed.example"]


def test_only_the_allowed_addresses_of_a_name_are_returned_in_order():
    resolver = Resolver({"models.example": ["127.0.0.1", "93.184.215.14", "10.0.0.1", "2606:2800:21f::1"]})
    addresses = PRODUCTION.checked_addresses("models.example", 443, resolver)
    assert addresses == [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("2606:2800:21f::1")]


def test_literals_localhost_and_metadata_names_are_judged_without_a_lookup():
    resolver = Resolver({})
    for host in ("0x7f000001", "127.1", "localhost", "a.b.localhost", "metadata.google.internal", "::1"):
        with pytest.raises(EgressRefused):
            PRODUCTION.checked_addresses(host, 80, resolver)
    assert resolver.lookups == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.215.14", None),
        ("2606:2800:21f::1", None),
        ("127.0.0.53", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("192.0.2.1", "documentation"),
        ("2001:db8::1", "documentation"),
        ("::127.0.0.1", "reserved"),
        ("2001::1", "IETF protocol"),
        ("fec0::1", "site-local"),
    ],
)
def test_each_special_range_is_named(address, kind):
    assert non_public_kind(ipaddress.ip_address(address)) == kind
