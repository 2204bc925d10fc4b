"""Create a tenant (schema, host) and make an existing or new user its admin."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from tenancy.services import ensure_public_tenant, tenant_create, tenant_host, user_create


class Command(BaseCommand):
    help = "Create tenant SLUG on SLUG.<base domain> with USERNAME as its admin (created if missing)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--admin", required=True, help="username of the tenant's first admin")
        parser.add_argument("--name", default="", help="display name (default: the slug)")
        parser.add_argument("--domain", default=None, help="host name (default: SLUG.localhost)")

    def handle(self, *args, slug, admin, name, domain, **options):
        ensure_public_tenant()
        user = get_user_model().objects.filter(username=admin).first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(12)
            user = user_create(username=admin, password=password)
        try:
            tenant = tenant_create(actor=None, slug=slug, name=name, admin_user=user, domain=domain)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.message}") from error
        host = domain or tenant_host(slug)
        self.stdout.write(
            self.style.SUCCESS(f"Tenant {slug!r} created (schema {tenant.schema_name}, host {host}).")
        )
        if password:
            self.stdout.write(f"New user {admin!r} created with password: {password}")
        self.stdout.write(f"Console: http://{host}:8000/  (admin: {admin})")
