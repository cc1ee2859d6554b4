from django.templatetags.static import static
from django.urls import path, re_path
from django.views.generic import RedirectView

from . import alerts, compare, event_search, failures, fleet, jobs, schemas, views


class Favicon(RedirectView):
    """To the icon's static URL, looked up per request: with collected static files it is a
    hashed name, known only once the storage has read its manifest (not at import)."""

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("dashboards/favicon.svg")


# Job ids are STATE_MACHINE:NAME; Map-run children may hold a "/", hence `.+`.
urlpatterns = [
    path("", jobs.home, name="home"),
    # Before `jobs/<job id>/`, which would take "compare" for a job id.
    path("jobs/compare/", compare.job_compare, name="job-compare"),
    re_path(r"^jobs/(?P<job_id>.+)/$", views.job_detail, name="job-detail"),
    path("architecture/", views.architecture, name="architecture"),
    path("events/", event_search.event_list, name="events"),
    path("failures/", failures.failure_list, name="failures"),
    # Distributed Map children run under `Parent/MapRunLabel`: the name may hold a "/".
    path("state-machines/<path:name>/", fleet.state_machine, name="state-machine"),
    # Browsers ask for /favicon.ico whatever the page says; public, like the login page's icon.
    path("favicon.ico", Favicon.as_view(), name="favicon"),
    path("alerts/", alerts.rule_list, name="alerts"),
    path("alerts/new/", alerts.rule_new, name="alert-new"),
    path("alerts/<int:pk>/", alerts.rule_edit, name="alert-edit"),
    path("alerts/<int:pk>/enabled/", alerts.rule_enabled, name="alert-enabled"),
    path("alerts/<int:pk>/test/", alerts.rule_test, name="alert-test"),
    path("schemas/", schemas.schema_list, name="schemas"),
    re_path(
        r"^schemas/(?P<source>[^/]+)/(?P<detail_type>.+)/$",
        schemas.schema_detail,
        name="schema-detail",
    ),
]
