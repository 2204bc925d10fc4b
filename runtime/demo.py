"""Demo content of runtime: the `default` model endpoint (the dev model) and a demo runtime key; idempotent.

The dev model is an ordinary endpoint here, created only in the demo tenant; no setting makes it a default.
"""

import os

from runtime.models import ModelEndpoint, RuntimeKey
from runtime.services import model_endpoint_create, runtime_key_create

DEV_MODEL_URL_ENV = "CONTRACTOR_DEV_MODEL_URL"
DEV_MODEL_URL = "http://127.0.0.1:8002/v1"
DEV_MODELS = ["dev-echo", "dev-error", "dev-model", "dev-slow"]
DEMO_ENDPOINT = "default"
DEMO_KEY_NAME = "demo"


def seed_runtime(*, tenant, users: dict, stdout) -> None:
    """Create the `default` endpoint (the dev model) and, once, a runtime key for `current`."""
    operator = users["operator"]
    if not ModelEndpoint.objects.filter(name=DEMO_ENDPOINT).exists():
        result = model_endpoint_create(
            actor=operator,
            name=DEMO_ENDPOINT,
            base_url=os.environ.get(DEV_MODEL_URL_ENV, DEV_MODEL_URL),
            allowed_models=DEV_MODELS,
            timeout_seconds=10.0,
        )
        if not isinstance(result, ModelEndpoint):  # a governed tenant (two admins): it waits for approval
            stdout.write(
                f"  Model endpoint {DEMO_ENDPOINT}: governance change #{result.pk} waits for approval"
            )
            return
    base_url = ModelEndpoint.objects.get(name=DEMO_ENDPOINT).base_url
    stdout.write(f"  Model endpoint {DEMO_ENDPOINT}: {base_url}")
    existing = RuntimeKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).first()
    if existing is not None:
        stdout.write(
            f"  Runtime key {DEMO_KEY_NAME}: {existing.display} (its secret was shown once, at creation; "
            "create another in the console if it is lost)"
        )
        return
    created = runtime_key_create(actor=operator, name=DEMO_KEY_NAME)
    waiting = f" (works once governance change #{created.change.pk} is approved)" if created.change else ""
    stdout.write(f"  Runtime key {DEMO_KEY_NAME} for current (shown only now): {created.secret}{waiting}")
