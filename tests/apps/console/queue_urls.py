"""URL confs for the gate links: the site with a stand-in review queue page named 'reviews:queue' in
place of the review app's own (if it is installed), so the link's form is known here."""

from django.http import HttpResponse
from django.urls import URLResolver, include, path

from config.urls import urlpatterns as site


def _queue(request, kind):
    return HttpResponse(kind)


queue = [path("<str:kind>/", _queue, name="queue")]
urlpatterns = [
    path("queue-test/", include((queue, "reviews"))),
    *[p for p in site if not (isinstance(p, URLResolver) and p.app_name == "reviews")],
]
