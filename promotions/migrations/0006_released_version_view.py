"""(Re)create the released-versions view from its statement in promotions/release_view.py, which owns it.

Databases migrated before promotions owned the view got it from runtime's 0002 (which still creates it, from
the same statement, for the grants it gives on it); CREATE OR REPLACE keeps it and its grants either way.
Going back leaves the view in place: the runtime's grants read through it.
"""

from django.db import migrations

from promotions.release_view import RELEASED_VIEW_SQL


class Migration(migrations.Migration):
    dependencies = [
        ("promotions", "0005_default_environments"),
        ("bundles", "0002_protect_versions"),
    ]

    operations = [migrations.RunSQL(RELEASED_VIEW_SQL, migrations.RunSQL.noop)]
