from django.db import migrations


class Migration(migrations.Migration):
    """Joins the replay/conflict/shared-cache branch (0010-0011 h2) and the execution shapes
    (0010 h5), which were written side by side and touch different tables."""

    dependencies = [
        ("events", "0010_h5_job_shapes"),
        ("events", "0011_h2_shared_cache"),
    ]

    operations = []
