"""Small helpers for HTMX views."""

from django.http import HttpResponse

# htmx stops polling when a response carries this status (the job being polled has finished).
HTMX_STOP_POLLING = 286


def stop_polling(response: HttpResponse) -> HttpResponse:
    response.status_code = HTMX_STOP_POLLING
    return response
