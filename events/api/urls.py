from django.urls import path, re_path
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView

from events.api import architecture, failures, fleet, jobview, preferences, replay, schemas, views

# Job ids are STATE_MACHINE:NAME; Map-run children may hold a "/", hence `.+`.
urlpatterns = [
    re_path(r"^preferences/?$", preferences.PreferencesView.as_view(), name="api-preferences"),
    re_path(r"^latest/?$", views.LatestView.as_view(), name="api-latest"),
    re_path(r"^jobs/?$", views.JobListView.as_view(), name="api-jobs"),
    # Before the `jobs/<job id>/...` routes, so that no job id pattern can take it.
    re_path(r"^jobs/compare/?$", jobview.JobCompareView.as_view(), name="api-jobs-compare"),
    re_path(
        r"^jobs/(?P<job_id>.+)/events/?$", views.JobEventsView.as_view(), name="api-job-events"
    ),
    re_path(
        r"^jobs/(?P<job_id>.+)/timeline/?$",
        views.JobTimelineView.as_view(),
        name="api-job-timeline",
    ),
    re_path(
        r"^jobs/(?P<job_id>.+)/export/?$", jobview.JobExportView.as_view(), name="api-job-export"
    ),
    re_path(
        r"^jobs/(?P<job_id>.+)/replay/?$", replay.JobReplayView.as_view(), name="api-job-replay"
    ),
    re_path(r"^job/(?P<job_id>.+?)/?$", views.OriginalJobView.as_view(), name="api-job"),
    re_path(
        r"^architecture/diff/?$",
        architecture.ArchitectureDiffView.as_view(),
        name="api-architecture-diff",
    ),
    re_path(r"^architecture/?$", views.ArchitectureView.as_view(), name="api-architecture"),
    re_path(
        r"^state-machines/(?P<name>.+?)/metrics/?$",
        fleet.StateMachineMetricsView.as_view(),
        name="api-state-machine-metrics",
    ),
    # The search list before one event: `events/` alone is the list, never an empty id.
    re_path(r"^events/?$", fleet.EventSearchView.as_view(), name="api-events"),
    re_path(
        r"^events/(?P<event_id>.+?)/replay/?$",
        replay.EventReplayView.as_view(),
        name="api-event-replay",
    ),
    # Envelope ids are the producers' strings: quoted in links, any character here.
    re_path(r"^events/(?P<event_id>.+?)/?$", views.EventView.as_view(), name="api-event"),
    re_path(r"^schemas/?$", schemas.SchemaListView.as_view(), name="api-schemas"),
    # A source holds no "/" (quoted or not: paths are decoded first); a detail-type may.
    re_path(
        r"^schemas/(?P<source>[^/]+)/(?P<detail_type>.+?)/?$",
        schemas.SchemaDetailView.as_view(),
        name="api-schema-detail",
    ),
    re_path(r"^failures/?$", failures.FailuresView.as_view(), name="api-failures"),
    re_path(r"^health/?$", views.HealthView.as_view(), name="api-health"),
    # JSON first, so errors keep the one JSON shape; `?format=yaml` still gives YAML.
    path(
        "schema",
        SpectacularAPIView.as_view(
            renderer_classes=[
                OpenApiJsonRenderer,
                OpenApiJsonRenderer2,
                OpenApiYamlRenderer,
                OpenApiYamlRenderer2,
            ]
        ),
        name="api-schema",
    ),
]
