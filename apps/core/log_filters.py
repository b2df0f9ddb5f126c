"""Logging filters named in settings.LOGGING."""

import logging


class RefusalWithoutTraceback(logging.Filter):
    """A 403 is an answer, not a fault: Django logs it with the PermissionDenied traceback attached, which
    buries real errors in the log. Keep the one line ("Forbidden (Permission denied): /path")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
