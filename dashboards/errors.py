"""The error answers: `{"error": "..."}` under /api/ (DESIGN section 6), the site's own styled
pages (templates/400.html ... 500.html) everywhere else.

Django calls these for what no view answered: an unknown URL, a refused request
(SuspiciousOperation), an exception. edobs_site/urls.py names them as its handlers.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def _json(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _json(request):
        return JsonResponse({"error": "bad request"}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _json(request):
        return JsonResponse({"error": "not allowed"}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _json(request):
        return JsonResponse({"error": "not found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _json(request):
        return JsonResponse({"error": "internal error"}, status=500)
    return defaults.server_error(request)
