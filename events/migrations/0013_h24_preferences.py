import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Each user's time zone choice for the pages (UTC or local), and the admin's
    "alert deliveries" (Django's default plural said "deliverys")."""

    dependencies = [
        ("events", "0012_merge_h2_h5"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="alertdelivery",
            options={"ordering": ["firing", "attempt"], "verbose_name_plural": "alert deliveries"},
        ),
        migrations.CreateModel(
            name="UserPreference",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),  # fmt: skip
                ("time_zone", models.CharField(choices=[("utc", "UTC"), ("local", "Local time")],
                                               default="utc", max_length=8)),  # fmt: skip
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="edobs_preference",
                                              to=settings.AUTH_USER_MODEL)),  # fmt: skip
            ],
        ),
    ]
