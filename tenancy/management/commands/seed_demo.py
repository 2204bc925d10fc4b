"""Seed the demo: tenant acme on acme.localhost with one user per role (idempotent).

Seeding again only adds what is missing: existing users, memberships and roles are never changed, and no
gate runs here (the worker runs them), so a second `make run` starts in seconds.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from governance.models import GovernanceChangeRequest
from governance.selectors import CHANGE_PENDING_MESSAGE
from tenancy.models import Tenant
from tenancy.roles import Role
from tenancy.services import ensure_public_tenant, membership_set, tenant_create, tenant_host, user_create

DEMO_USERS = {
    "author": [Role.AUTHOR],
    "reviewer": [Role.REVIEWER],
    "operator": [Role.OPERATOR],
    "auditor": [Role.AUDITOR],
    "admin": [Role.ADMIN],
}
PLATFORM_USER = "platform"


def demo_password(username: str) -> str:
    """Return the development password of demo user `username`."""
    return f"{username}-demo-pass"


class Command(BaseCommand):
    help = "Create (or complete) the demo tenant, its users and their roles; print the logins."

    def handle(self, *args, **options):
        ensure_public_tenant()
        slug = settings.CONTRACTOR["DEMO_TENANT"]
        users = {name: self.ensure_user(name) for name in [*DEMO_USERS, PLATFORM_USER]}
        tenant = Tenant.objects.filter(schema_name=slug).first()
        if tenant is None:
            tenant = tenant_create(actor=None, slug=slug, name="Acme Insurance", admin_user=users["admin"])
        for name, roles in DEMO_USERS.items():
            # Only a missing membership is created: roles an admin changed since are left as they are.
            if not tenant.memberships.filter(user=users[name]).exists():
                result = membership_set(actor=None, tenant=tenant, user=users[name], roles=roles)
                if isinstance(result, GovernanceChangeRequest):
                    # A tenant with two admins governs its memberships, whoever asks (commands too).
                    self.stdout.write(CHANGE_PENDING_MESSAGE.format(id=result.pk))
        self.seed_tenant_content(tenant, users)
        self.print_logins(tenant_host(slug))

    def ensure_user(self, username: str):
        """Return demo user `username`, created with its development password if missing."""
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            user = user_create(
                username=username, password=demo_password(username), is_staff=username == PLATFORM_USER
            )
        return user

    def seed_tenant_content(self, tenant: Tenant, users: dict) -> None:
        """Let the apps seed their demo content (bundles, environments, promotions)."""
        from core.demo import seed_apps  # the apps register their seeders there

        seed_apps(tenant=tenant, users=users, stdout=self.stdout)

    def print_logins(self, host: str) -> None:
        """Print the URLs and the development logins."""
        self.stdout.write(self.style.SUCCESS("Demo tenant ready."))
        self.stdout.write(f"  Console: http://{host}:8000/   API docs: http://{host}:8000/api/docs/")
        self.stdout.write("  Logins (development passwords):")
        for name, roles in DEMO_USERS.items():
            self.stdout.write(f"    {name:<9} {demo_password(name):<22} roles: {', '.join(roles)}")
        admin_login = f"{PLATFORM_USER} / {demo_password(PLATFORM_USER)}"
        self.stdout.write(f"  Platform admin: http://localhost:8000/admin/  {admin_login}")
