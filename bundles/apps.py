from django.apps import AppConfig


class BundlesConfig(AppConfig):
    name = "bundles"

    def ready(self):
        """Register the demo seeder (before the promotions seeder) and the dashboard panel."""
        from bundles.demo import seed_bundles
        from bundles.views import recent_versions_panel
        from core.dashboard import register_panel
        from core.demo import register_seeder

        register_seeder(seed_bundles, order=10)
        register_panel(recent_versions_panel, order=10)
