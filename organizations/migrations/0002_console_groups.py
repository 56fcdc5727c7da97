"""Console groups: membership roles map onto these (organizations.services.user_sync_console_access).

Model permissions say what a role may do at all; which clinic's rows it applies to is checked per object.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

STAFF_PERMISSIONS = {
    "organizations": [
        "view_organization",
        "view_businesshours",
        "view_closure",
        "view_intakefield",
        "view_escalationphrase",
    ],
    "calls": [
        "view_call",
        "change_call",
        "view_transcriptsegment",
        "view_intake",
        "view_escalation",
        "change_escalation",
        "add_escalation",
    ],
}
ADMIN_EXTRA = {
    "organizations": [
        "change_organization",
        "add_businesshours",
        "change_businesshours",
        "delete_businesshours",
        "add_closure",
        "change_closure",
        "delete_closure",
        "add_intakefield",
        "change_intakefield",
        "delete_intakefield",
        "add_escalationphrase",
        "change_escalationphrase",
        "delete_escalationphrase",
        "view_membership",
    ],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after migrate; make sure they exist for a fresh database.
    # (the historical app registry's configs lack models_module, which create_permissions checks).
    for app_label in ("organizations", "calls"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def perms(spec):
        out = []
        for app_label, codenames in spec.items():
            out += list(Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
        return out

    staff, _ = Group.objects.get_or_create(name="Clinic staff")
    staff.permissions.set(perms(STAFF_PERMISSIONS))
    admin, _ = Group.objects.get_or_create(name="Clinic admins")
    admin.permissions.set(perms(STAFF_PERMISSIONS) + perms(ADMIN_EXTRA))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Clinic staff", "Clinic admins"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0001_initial"),
        ("calls", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
