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
    from governance.registry import ChangeKind, register_kind
    from tenancy import services
    from tenancy.sso import services as sso

    register_kind(
        ChangeKind(
            name=services.MEMBERSHIP_ROLES_KIND,
            label="Member roles",
            state=services.membership_roles_state,
            apply=services.membership_roles_apply,
        )
    )
    register_kind(
        ChangeKind(
            name=services.MEMBERSHIP_GROUPS_KIND,
            label="Member groups",
            state=services.membership_groups_state,
            apply=services.membership_groups_apply,
        )
    )
    register_kind(
        ChangeKind(
            name=sso.SSO_CONFIG_KIND,
            label="Single sign-on",
            state=sso.sso_config_state,
            apply=sso.sso_config_approved_apply,
        )
    )
