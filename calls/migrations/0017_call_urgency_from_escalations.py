"""A call's stored urgency now includes what its highest escalation means (services keep it so from here on): raise
the urgency of calls escalated before this release, so the list filter and the API agree with what staff are shown.

Two UPDATEs over the (organization, urgency) index's table, each touching only the calls that need it; reversing
leaves the raised values (they are what the calls meant).
"""

from django.db import migrations

# Frozen here: a migration must not follow later edits of the vocabulary.
RAISE = [
    ("emergency", "emergency", ["emergency"]),
    ("urgent", "urgent", ["urgent", "emergency"]),
]


def raise_urgency(apps, schema_editor):
    Call = apps.get_model("calls", "Call")
    for level, urgency, at_least in RAISE:
        Call.objects.filter(escalation_level=level).exclude(urgency__in=at_least).update(urgency=urgency)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0016_forwarded_intake_and_escalation"),
    ]

    operations = [
        migrations.RunPython(raise_urgency, migrations.RunPython.noop, elidable=True),
    ]
