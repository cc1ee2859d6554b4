"""Events gain `at` and `at_source`, the best clock each carries (events.clock); a job's events
are ordered by `at`. Stored rows get theirs from their envelope (the delivery clock was not
kept), then every job summary is rebuilt on those times."""

from django.db import migrations, models

CHUNK = 2000


def fill_at(apps, schema_editor):
    from events.domain.envelope import stored_event

    alias = schema_editor.connection.alias
    events = apps.get_model("events", "Event").objects.using(alias)
    rows = events.filter(at__isnull=True).values_list(
        "seq", "raw", "event_id", "source", "detail_type", "account", "region", "time",
        "received_at",
    )  # fmt: skip
    changed = []
    for seq, raw, event_id, source, detail_type, account, region, time, received in rows.iterator(
        chunk_size=CHUNK
    ):
        event = stored_event(
            raw, id=event_id, source=source, detail_type=detail_type, account=account,
            region=region, time=time, received_at=received,
        )  # fmt: skip
        changed.append(events.model(seq=seq, at=event.at, at_source=event.at_source))
        if len(changed) >= CHUNK:
            events.bulk_update(changed, ["at", "at_source"])
            changed = []
    events.bulk_update(changed, ["at", "at_source"])


def rebuild(apps, schema_editor):
    from events.stores.orm.rebuild import rebuild_jobs

    rebuild_jobs(
        event_model=apps.get_model("events", "Event"),
        job_model=apps.get_model("events", "Job"),
        using=schema_editor.connection.alias,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_job_per_account"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="event",
            name="at_source",
            field=models.CharField(default="envelope", max_length=16),
        ),
        migrations.RunPython(fill_at, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="event",
            name="at",
            field=models.DateTimeField(
                help_text="when it happened, from its best clock (events.clock)"
            ),
        ),
        migrations.AlterField(
            model_name="event",
            name="time",
            field=models.DateTimeField(help_text="the envelope's time (whole seconds)"),
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="event_job_order",
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["job", "at", "seq"], name="event_job_order"),
        ),
        migrations.RunPython(rebuild, migrations.RunPython.noop, elidable=True),
    ]
