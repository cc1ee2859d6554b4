from django.urls import path, re_path

from . import event_search, fleet, jobs, views

# Job ids are STATE_MACHINE:NAME; Map-run children may hold a "/", hence `.+`.
urlpatterns = [
    path("", jobs.home, name="home"),
    re_path(r"^jobs/(?P<job_id>.+)/$", views.job_detail, name="job-detail"),
    path("architecture/", views.architecture, name="architecture"),
    path("events/", event_search.event_list, name="events"),
    path("state-machines/<str:name>/", fleet.state_machine, name="state-machine"),
]
