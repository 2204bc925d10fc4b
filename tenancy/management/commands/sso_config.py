"""Show or change a tenant's single sign-on configuration (platform operators)."""

import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from governance.selectors import is_pending_change
from tenancy.models import Tenant
from tenancy.services import schema_name_for
from tenancy.sso.selectors import sso_config_of
from tenancy.sso.services import FIELDS, config_snapshot, sso_config_change

ON_OFF = {"on": True, "off": False}


def mapping(pairs: list[str]) -> dict[str, list[str]]:
    """Return {claim value: [names]} from VALUE=NAME[,NAME...] arguments."""
    result: dict[str, list[str]] = {}
    for pair in pairs:
        value, separator, names = pair.partition("=")
        if not separator or not value:
            raise CommandError(f"{pair!r}: expected CLAIM_VALUE=NAME[,NAME...]")
        result.setdefault(value, []).extend(name for name in names.split(",") if name)
    return result


CHANGE_PENDING = (
    "Not applied: this change loosens {slug!r}'s control (who may sign in, or with which roles), so it "
    "became governance change #{id} of that tenant; one of its admins must approve it (console: Governance)."
)


class Command(BaseCommand):
    help = (
        "Show (no options) or change tenant SLUG's single sign-on (OpenID Connect). Changes are audited in "
        "the tenant's log. The client secret is never stored: --client-secret-env names the environment "
        "variable of the console process holding it."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--issuer", help="issuer URL (discovery at /.well-known/openid-configuration)")
        parser.add_argument("--client-id")
        parser.add_argument(
            "--client-secret-env", help="name of the variable holding the secret ('' for none)"
        )
        parser.add_argument("--scopes", help='space-separated, e.g. "openid email profile groups"')
        parser.add_argument("--username-claim")
        parser.add_argument("--email-claim")
        parser.add_argument("--groups-claim")
        parser.add_argument(
            "--role-map",
            action="append",
            default=None,
            metavar="VALUE=ROLE[,ROLE]",
            help="replace the role mapping (repeat per claim value; --role-map '' clears it)",
        )
        parser.add_argument(
            "--group-map",
            action="append",
            default=None,
            metavar="VALUE=GROUP[,GROUP]",
            help="replace the group mapping (repeat per claim value; --group-map '' clears it)",
        )
        for flag in ("enabled", "sso-only", "auto-provision"):
            parser.add_argument(f"--{flag}", choices=sorted(ON_OFF))

    def handle(self, *args, slug, **options):
        tenant = Tenant.objects.filter(schema_name=schema_name_for(slug)).first()
        if tenant is None or tenant.schema_name == "public":
            raise CommandError(f"no tenant {slug!r}")
        changes = {}
        for name in ("issuer", "client_id", "client_secret_env", *("username_claim", "email_claim")):
            if options[name] is not None:
                changes[name] = options[name]
        if options["groups_claim"] is not None:
            changes["groups_claim"] = options["groups_claim"]
        if options["scopes"] is not None:
            changes["scopes"] = options["scopes"].split()
        for name, option in (("role_mapping", "role_map"), ("group_mapping", "group_map")):
            if options[option] is not None:
                changes[name] = mapping([pair for pair in options[option] if pair])
        for name in ("enabled", "sso_only", "auto_provision"):
            if options[name] is not None:
                changes[name] = ON_OFF[options[name]]
        if changes:
            try:
                result = sso_config_change(actor=None, tenant=tenant, changes=changes)
            except DomainError as error:
                lines = [f"{d.get('field')}: {d.get('message')}" for d in error.details]
                raise CommandError("\n".join([f"{error.code}: {error.message}", *lines])) from error
            if is_pending_change(result):
                self.stdout.write(self.style.WARNING(CHANGE_PENDING.format(slug=slug, id=result.pk)))
            else:
                self.stdout.write(
                    self.style.SUCCESS(f"Single sign-on of {slug!r} saved ({', '.join(changes)}).")
                )
        config = sso_config_of(tenant)
        if config is None:
            self.stdout.write(f"Tenant {slug!r} has no single sign-on configuration.")
            return
        shown = {name: config_snapshot(config)[name] for name in FIELDS}
        self.stdout.write(json.dumps(shown, indent=2, sort_keys=True))
