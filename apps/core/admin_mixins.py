"""Shared pieces of the apps' admin classes."""


class WrittenByRetort:
    """Rows only Retort's own code writes (the gateway, the engine, the gpu tasks, the reviews): the admin
    shows them and never adds one, since an add form of read-only fields would save an empty row or crash
    with a 500 on its NOT NULL columns."""

    def has_add_permission(self, request):
        return False
