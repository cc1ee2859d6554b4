from django.urls import path, re_path

from . import schemas, views

# Job ids are STATE_MACHINE:NAME; Map-run children may hold a "/", hence `.+`.
urlpatterns = [
    path("", views.home, name="home"),
    re_path(r"^jobs/(?P<job_id>.+)/$", views.job_detail, name="job-detail"),
    path("architecture/", views.architecture, name="architecture"),
    path("events/", views.event_list, name="events"),
    path("schemas/", schemas.schema_list, name="schemas"),
    re_path(
        r"^schemas/(?P<source>[^/]+)/(?P<detail_type>.+)/$",
        schemas.schema_detail,
        name="schema-detail",
    ),
]
