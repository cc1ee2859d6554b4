"""Job ids gain the account and region (ACCOUNT:REGION:STATE_MACHINE:NAME), and envelope ids
are unique per account: two accounts running the same execution name are two jobs."""

from django.db import migrations, models


def rebuild(apps, schema_editor):
    from events.stores.orm.rebuild import rebuild_jobs

    rebuild_jobs(
        event_model=apps.get_model("events", "Event"),
        job_model=apps.get_model("events", "Job"),
        using=schema_editor.connection.alias,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0002_rejected_once"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="job",
            name="job_name",
        ),
        migrations.AlterField(
            model_name="event",
            name="event_id",
            field=models.CharField(max_length=128),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["name", "-last_event_at"], name="job_name_latest"),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["received_at"], name="event_arrival"),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                fields=("account", "event_id"), name="event_once_per_account"
            ),
        ),
        migrations.RunPython(rebuild, migrations.RunPython.noop, elidable=True),
    ]
