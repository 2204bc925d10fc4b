"""Gate runs get a heartbeat, a dispatch time and the `stale` status; requests count automatic gate re-runs.

The trigger of finished runs also keeps an active run's identity (version, digest, requester, creation time)
and never lets its attempt counter, the claim's token, go back.
"""

from django.conf import settings
from django.db import migrations, models

from promotions.immutability import CREATE_FUNCTION_SQL, CREATE_FUNCTION_WITH_IDENTITY_SQL

# Runs still active when this migrates get a first sign of life, so the watch judges them like new ones.
BACKFILL_SQL = """
UPDATE promotions_gaterun
   SET heartbeat_at = COALESCE(started_at, created_at), dispatched_at = created_at
 WHERE status IN ('queued', 'running')
"""


class Migration(migrations.Migration):

    dependencies = [
        ('bundles', '0002_protect_versions'),
        ('promotions', '0006_released_version_view'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='gaterun',
            name='dispatched_at',
            field=models.DateTimeField(blank=True, help_text='When a message for this run was last sent to the workers.', null=True),
        ),
        migrations.AddField(
            model_name='gaterun',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='historicalpromotionrequest',
            name='gate_reruns',
            field=models.PositiveIntegerField(db_default=0, default=0, help_text='Gate runs the system started again for this request after a run ended in error.'),
        ),
        migrations.AddField(
            model_name='promotionrequest',
            name='gate_reruns',
            field=models.PositiveIntegerField(db_default=0, default=0, help_text='Gate runs the system started again for this request after a run ended in error.'),
        ),
        migrations.AlterField(
            model_name='gaterun',
            name='status',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('stale', 'Stale'), ('passed', 'Passed'), ('failed', 'Failed'), ('error', 'Error')], default='queued', max_length=10),
        ),
        migrations.AddIndex(
            model_name='gaterun',
            index=models.Index(fields=['status', 'heartbeat_at'], name='gaterun_status_heartbeat'),
        ),
        migrations.RunSQL(BACKFILL_SQL, migrations.RunSQL.noop),
        migrations.RunSQL(CREATE_FUNCTION_WITH_IDENTITY_SQL, CREATE_FUNCTION_SQL),
    ]
