"""Separate duties in `current` by default and snapshot the rules of requests already pending.

A migration of its own: data changes and the schema changes of 0007 cannot share a transaction (deferred
constraint triggers).
"""

from django.db import migrations


def separate_duties_in_current(apps, schema_editor):
    """Turn on forbid_author_approval for `current` (the default for new tenants too)."""
    Environment = apps.get_model("promotions", "Environment")
    Environment.objects.filter(name="current").update(forbid_author_approval=True)


def snapshot_pending_rules(apps, schema_editor):
    """Give every pending request the rules it was made under (as they are now: the last known state)."""
    PromotionRequest = apps.get_model("promotions", "PromotionRequest")
    for request in PromotionRequest.objects.filter(status="pending").select_related("environment"):
        environment = request.environment
        request.rules = {
            "requires_gates": environment.requires_gates,
            "required_approvals": environment.required_approvals,
            "required_groups": [],
            "forbid_author_approval": False,
        }
        request.save(update_fields=["rules"])


class Migration(migrations.Migration):
    dependencies = [("promotions", "0008_environment_separation_groups_snapshots")]

    operations = [
        migrations.RunPython(separate_duties_in_current, migrations.RunPython.noop),
        migrations.RunPython(snapshot_pending_rules, migrations.RunPython.noop),
    ]
