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
        register_governance_kinds()


def register_governance_kinds() -> None:
    """Make environment rules and approver grants governance change kinds."""
    from governance.registry import register_kinds, register_role_check
    from promotions.services import environments, webhooks

    register_kinds(
        (
            environments.ENVIRONMENT_RULES_KIND,
            "Environment rules",
            environments.environment_rules_state,
            environments.environment_rules_apply,
        ),
        (
            environments.APPROVER_GRANT_KIND,
            "Approver grant",
            environments.approver_state,
            environments.approver_grant_apply,
        ),
        (
            webhooks.WEBHOOK_CREATE_KIND,
            "New webhook",
            webhooks.webhook_create_state,
            webhooks.webhook_create_apply,
        ),
        (
            webhooks.WEBHOOK_DELETE_KIND,
            "Webhook stopped",
            webhooks.webhook_delete_state,
            webhooks.webhook_delete_apply,
        ),
    )
    register_role_check(environments.author_role_check)
