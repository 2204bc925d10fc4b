"""The demo seeder: the `default` endpoint on the dev model and a demo key, once."""

import io

from runtime.demo import DEV_MODEL_URL, seed_runtime
from runtime.models import ModelEndpoint, RuntimeKey


def test_the_demo_gets_the_dev_model_endpoint_and_one_key(in_tenant_a, tenant_a, make_member):
    users = {"operator": make_member(tenant_a, "demo-operator", ["operator"])}
    first, second = io.StringIO(), io.StringIO()
    seed_runtime(tenant=tenant_a, users=users, stdout=first)
    seed_runtime(tenant=tenant_a, users=users, stdout=second)
    endpoint = ModelEndpoint.objects.get()
    assert (endpoint.name, endpoint.base_url) == ("default", DEV_MODEL_URL)
    assert "dev-model" in endpoint.allowed_models
    key = RuntimeKey.objects.get()
    assert key.environment.name == "current"
    assert f"ck_{key.prefix}_" in first.getvalue()
    assert f"ck_{key.prefix}_" not in second.getvalue().replace(key.display, "")
