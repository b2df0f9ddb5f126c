from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import RetortError


def exception_handler(exc, context):
    """DRF's handler, plus our domain errors as 400s with their message and details."""
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, DjangoValidationError):  # a model's full_clean() inside a service
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, RequestDataTooBig):  # else Django answers with the HTML page for a 400
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = exceptions.ParseError(f"The request body is over the {limit:,}-byte limit (DATA_UPLOAD_MAX_MEMORY_SIZE).")
    if isinstance(exc, RetortError):
        exc = exceptions.ValidationError({"detail": str(exc), **exc.details})
    return drf_exception_handler(exc, context)
