"""The canonical JSON encoder writes exactly what RFC 8785 (the rfc8785 package) writes."""

import math
import random

import pytest
import rfc8785

from audit.canonical import canonical_json


def test_canonical_json_matches_rfc8785_on_awkward_values():
    value = {
        "\U0001f600": 1,
        "\ue000": 2,
        "é": 3,
        'a\n\x01"\\': [
            1.5,
            1e21,
            1e-7,
            -0.0,
            2.0,
            1e-5,
            5e-324,
            1.7976931348623157e308,
            2**53 - 1,
            0.1 + 0.2,
        ],
        "": [],
        "z": {},
        "b": [True, False, None, "\u2028"],
    }

    assert canonical_json(value) == rfc8785.dumps(value)


def test_canonical_json_matches_rfc8785_on_random_numbers():
    rng = random.Random(8785)
    numbers = [rng.random() * 10 ** rng.randint(-30, 30) * rng.choice([1, -1]) for _ in range(3000)]
    numbers += [float(rng.randint(-(2**60), 2**60)) for _ in range(1000)]

    assert [canonical_json(number) for number in numbers] == [rfc8785.dumps(number) for number in numbers]


@pytest.mark.parametrize("value", [math.nan, 2**53, {1: "x"}, object(), "\ud800"])
def test_canonical_json_refuses_what_rfc8785_refuses(value):
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json(value)


def test_canonical_json_encodes_string_enum_members_as_their_text():
    from audit.models import ActorKind

    assert canonical_json({"kind": ActorKind.USER}) == rfc8785.dumps({"kind": "user"})
