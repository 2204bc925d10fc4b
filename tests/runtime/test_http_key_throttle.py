"""Invalid runtime keys are throttled per source address (runtime/limits.py): past the limit within the
window, the source gets 429 too_many_key_failures with Retry-After; another source with a valid key is
served; the count is one expiring Redis key per source, whatever the attacker sends."""

import httpx
import pytest
import redis
from django.conf import settings

from runtime.exceptions import TOO_MANY_KEY_FAILURES
from runtime.limits import KEY_FAILURE_PREFIX, key_failure_source
from tests.runtime.conftest import runtime_database_url, start_runtime, stop_runtime

pytestmark = pytest.mark.django_db

LIMIT = 5
WINDOW = 60
CLAIM = {"claim_id": "C1", "amount": 10, "description": "car"}
WRONG_KEYS = [f"ck_{index:08x}_{'x' * 43}" for index in range(LIMIT + 3)]


@pytest.fixture(scope="module")
def throttled_runtime(world, tmp_path_factory):
    """A runtime process whose key-failure limit is LIMIT per WINDOW seconds."""
    process = start_runtime(
        runtime_database_url(),
        "throttle",
        tmp_path_factory.mktemp("throttle-metrics"),
        workers=1,
        threads=2,
        extra_env={"RUNTIME_KEY_FAILURE_LIMIT": str(LIMIT), "RUNTIME_KEY_FAILURE_WINDOW": str(WINDOW)},
    )
    yield process
    stop_runtime(process)


@pytest.fixture
def counters():
    """The Redis database the runtime counts in, with loopback's counters cleared before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    sources = [KEY_FAILURE_PREFIX + "127.0.0.1", KEY_FAILURE_PREFIX + "127.0.0.2"]
    client.delete(*sources)
    yield client
    client.delete(*sources)
    client.close()


def client_from(runtime, source: str) -> httpx.Client:
    """Return an HTTP client of `runtime` whose connections leave from loopback address `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=runtime.address, transport=transport, timeout=30.0)


def execute(http: httpx.Client, world, key: str) -> httpx.Response:
    headers = {"Host": world.host, "Authorization": f"Bearer {key}"}
    return http.post("/v1/execute/claims-lab/triage", json={"input": CLAIM}, headers=headers)


def test_a_source_sending_too_many_invalid_keys_is_throttled_and_another_is_not(
    throttled_runtime, world, counters
):
    with (
        client_from(throttled_runtime, "127.0.0.1") as attacker,
        client_from(throttled_runtime, "127.0.0.2") as other,
    ):
        answers = [execute(attacker, world, key) for key in WRONG_KEYS[:LIMIT]]
        assert [answer.status_code for answer in answers] == [401] * LIMIT

        throttled = execute(attacker, world, WRONG_KEYS[LIMIT])
        assert throttled.status_code == 429
        retry_after = int(throttled.headers["Retry-After"])
        assert 1 <= retry_after <= WINDOW
        assert throttled.json()["error"] == {
            "code": "too_many_key_failures",
            "message": TOO_MANY_KEY_FAILURES.format(seconds=retry_after),
            "details": [{"retry_after": retry_after}],
        }
        # Even a valid key: otherwise the answer would tell a right guess from a wrong one.
        assert execute(attacker, world, world.keys["main"]).status_code == 429

        served = execute(other, world, world.keys["main"])
        assert served.status_code == 200
        assert served.json()["decision_id"] > 0


def test_the_count_is_one_expiring_redis_key_per_source(throttled_runtime, world, counters):
    with client_from(throttled_runtime, "127.0.0.1") as attacker:
        for key in WRONG_KEYS:
            execute(attacker, world, key)
    stored = sorted(key.decode() for key in counters.scan_iter(match=KEY_FAILURE_PREFIX + "*"))
    assert stored == [KEY_FAILURE_PREFIX + "127.0.0.1"]
    assert int(counters.get(stored[0])) == LIMIT  # refused requests are not counted again
    assert 0 < counters.ttl(stored[0]) <= WINDOW


@pytest.mark.parametrize(
    ("address", "source"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not an address", "unknown"),
    ],
)
def test_a_source_is_an_address_or_the_64_of_an_ipv6_address(address, source):
    assert key_failure_source(address) == source
