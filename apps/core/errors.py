class RetortError(Exception):
    """A domain error with a message meant for the person who caused it."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details
