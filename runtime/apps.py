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
