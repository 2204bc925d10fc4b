from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy"

    def ready(self):
        """Connect the receivers that revoke tokens and note sign-in times."""
        from tenancy.signals import connect

        connect()
        register_governance_kinds()


def register_governance_kinds() -> None:
    """Make members' roles and groups, and single sign-on configurations, governance change kinds."""
    from governance.registry import register_kinds
    from tenancy import services
    from tenancy.sso import services as sso

    register_kinds(
        (
            services.MEMBERSHIP_ROLES_KIND,
            "Member roles",
            services.membership_roles_state,
            services.membership_roles_apply,
        ),
        (
            services.MEMBERSHIP_GROUPS_KIND,
            "Member groups",
            services.membership_groups_state,
            services.membership_groups_apply,
        ),
        (sso.SSO_CONFIG_KIND, "Single sign-on", sso.sso_config_state, sso.sso_config_approved_apply),
    )
