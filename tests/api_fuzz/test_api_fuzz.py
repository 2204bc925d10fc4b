"""Property-based fuzzing of every control-plane operation against its own OpenAPI schema (schemathesis).

Bounded and derandomized, so it is cheap and repeatable: a few schema-valid and schema-violating requests per
operation, sent in-process (Django's test handler, inside the test's transaction) as a member holding every
role. Every answer must be a documented status with a body matching the schema; no 5xx; every error in the
shape {"error": {code, message, details}}; every 400 of invalid input names its fields.
"""

import functools
import json

import pytest
import schemathesis
from django.test.client import ClientHandler
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.renderers import JSONRenderer
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tenancy.roles import Role
from tenancy.tokens import api_token_issue_for
from tests.bundles.bundle_factories import push
from tests.conftest import host_of

EXAMPLES_PER_MODE = 6
# Body-level refusals with no field to name (the body as a whole could not be read).
BODY_LEVEL_CODES = {"parse_error", "too_many_parts", "unsupported_media_type"}
# Bundle validation names the file and the path inside it instead of a request field.
FILE_LEVEL_CODES = {"bundle_invalid", "archive_invalid", "name_mismatch"}


def error_shape(ctx, response, case):
    """Check that an error is JSON {"error": {code, message, details}} and that a 400 names its fields."""
    if response.status_code < 400:
        return None
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], list), error
    if response.status_code == 400 and error["code"] not in BODY_LEVEL_CODES:
        assert error["details"], f"a 400 without details: {error}"
        named = all("field" in detail for detail in error["details"])
        assert named or error["code"] in FILE_LEVEL_CODES, f"a detail without a field: {error}"
    return None


CHECKS = [not_a_server_error, content_type_conformance, status_code_conformance, response_schema_conformance]


def in_process_app():
    """Return a WSGI app running Django's test handler: same thread, same connection, same transaction."""
    handler = ClientHandler(enforce_csrf_checks=False)

    def app(environ, start_response):
        response = handler(environ)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return [response.content]

    return app


@functools.cache
def api_schema():
    """Return the schemathesis view of the OpenAPI schema the project generates, sent to in_process_app."""
    document = json.loads(JSONRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = in_process_app()
    return loaded


@pytest.fixture
def member_of_every_role(in_tenant_a, tenant_a, make_member):
    """A member holding every role, with a bundle to read; returns (host, Authorization header)."""
    user = make_member(tenant_a, "fuzz-everyone", list(Role.values))
    push(user)
    return host_of(tenant_a), f"Token {api_token_issue_for(tenant=tenant_a, user=user).secret}"


# About 30 s on a quiet machine; a loaded one (CI beside other jobs) can take ten times that, and a timeout
# interrupting a request mid-query reads as an "inconsistent" Hypothesis failure instead of a slow run.
@pytest.mark.timeout(900)
def test_every_operation_answers_fuzzed_requests_as_documented(member_of_every_role):
    host, authorization = member_of_every_role
    headers = {"Authorization": authorization}
    failures = []
    for operation in (result.ok() for result in api_schema().get_all_operations()):
        for mode in GenerationMode:

            @settings(
                max_examples=EXAMPLES_PER_MODE,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                response = case.call(base_url=f"http://{host}", headers=headers)
                case.validate_response(response, checks=CHECKS, additional_checks=[error_shape])

            try:
                fuzz()
            except Unsatisfiable:
                continue  # nothing of this operation can violate its schema (e.g. free-text path names)
            except (Exception, BaseExceptionGroup) as failure:  # collect every operation's failures
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert failures == [], "\n\n".join(failures)
