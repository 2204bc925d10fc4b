from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "promotions"

    def ready(self):
        """Contribute bundle facts, the pending-approvals panel and the demo seeder."""
        from bundles import extensions
        from core.dashboard import register_panel
        from core.demo import register_seeder
        from promotions import checks  # noqa: F401  (registers the system checks)
        from promotions.demo import seed_promotions
        from promotions.extensions import bundle_deployment_facts, pending_approvals_panel, version_gate_facts

        extensions.register_version_facts(version_gate_facts)
        extensions.register_bundle_facts(bundle_deployment_facts)
        register_panel(pending_approvals_panel, order=20)
        register_seeder(seed_promotions, order=20)
        # Console engineer's addition: the version page's gates + "Request promotion" panel.
        from promotions.views import register_console_panels

        register_console_panels()
