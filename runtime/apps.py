from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "runtime"

    def ready(self):
        """Register the system checks, the coverage panel and the demo seeder (after promotions)."""
        import runtime.checks  # noqa: F401 (registers the system checks)
        from core.dashboard import register_panel
        from core.demo import register_seeder
        from runtime.demo import seed_runtime
        from runtime.views import governance_panel

        register_panel(governance_panel, order=30)
        register_seeder(seed_runtime, order=30)
        register_governance_kinds()


def register_governance_kinds() -> None:
    """Make new runtime keys and model endpoint changes governance change kinds."""
    from governance.registry import register_kinds
    from runtime import services

    register_kinds(
        (services.RUNTIME_KEY_KIND, "Runtime key", services.runtime_key_state, services.runtime_key_apply),
        (
            services.MODEL_ENDPOINT_KIND,
            "Model endpoint",
            services.model_endpoint_state,
            services.model_endpoint_apply,
        ),
    )
