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
        register_governance_kinds()


def register_governance_kinds() -> None:
    """Make push grants a governance change kind."""
    from bundles import services
    from governance.registry import ChangeKind, register_kind

    register_kind(
        ChangeKind(
            name=services.PUSH_GRANT_KIND,
            label="Push grant",
            state=services.push_grant_state,
            apply=services.push_grant_apply,
        )
    )
