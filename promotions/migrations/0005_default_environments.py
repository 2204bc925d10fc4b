"""Create the default environments (staging, current) in every tenant schema."""

from django.db import migrations
from django.utils import timezone

from promotions.defaults import DEFAULT_ENVIRONMENTS


def create_defaults(apps, schema_editor):
    Environment = apps.get_model("promotions", "Environment")
    HistoricalEnvironment = apps.get_model("promotions", "HistoricalEnvironment")
    for spec in DEFAULT_ENVIRONMENTS:
        if Environment.objects.filter(name=spec["name"]).exists():
            continue
        required = Environment.objects.filter(name=spec["requires_live_in"]).first()
        environment = Environment.objects.create(
            name=spec["name"],
            position=spec["position"],
            description=spec["description"],
            requires_gates=spec["requires_gates"],
            required_approvals=spec["required_approvals"],
            requires_live_in=required,
        )
        HistoricalEnvironment.objects.create(
            id=environment.id,
            name=environment.name,
            position=environment.position,
            description=environment.description,
            requires_gates=environment.requires_gates,
            required_approvals=environment.required_approvals,
            requires_live_in=required,
            updated_at=environment.updated_at,
            history_date=timezone.now(),
            history_type="+",
            history_change_reason="default environment",
        )


class Migration(migrations.Migration):
    dependencies = [("promotions", "0004_protect_gate_runs_and_deliveries")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
