"""The permission matrix of the console: every page route × every role × GET and POST.

Anonymous users are sent to the login page, a role below the page's gets 403 and changes nothing, a role at
or above it gets the page's own answer (the page, a redirect after the action, or the form with its
validation errors). The Django admin sends everyone but staff to its own login page. The API's half of the
matrix is tests/api/test_roles.py (the same world, the same roles, admin included).
"""

import pytest

from tests.api.conftest import world  # noqa: F401 - the API tests' world, reused: one build per module
from tests.api.world import ROLES
from tests.reliability.security_pages import (
    NOT_SERVED,
    PAGES,
    RANK,
    admin_path,
    admin_routes,
    clients,
    rolled_back,
    served_routes,
    state,
)

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def expected(least: str | None, role: str, allowed_status: int) -> tuple[int, str | None]:
    """(status, where a redirect must lead) for a role asking for a method whose least role is `least`."""
    if least == "public":
        return allowed_status, None
    if least == "staff":
        return (allowed_status, None) if role == "admin" else (302, ADMIN_LOGIN)
    if role == "anonymous":
        return 302, LOGIN
    if least is NOT_SERVED:
        return 405, None
    return (allowed_status, None) if RANK[role] >= RANK[least] else (403, None)


def _send(client, method: str, path: str, body):
    if method == "GET":
        return client.get(path)
    return client.post(path, body or {})


@pytest.fixture(scope="module")
def sessions(world):  # noqa: F811
    """One logged-in browser per role for the module (each request's changes are rolled back)."""
    return clients(world)


def _check(every: dict, method: str, path: str, least, allowed_status: int, body=None) -> list[str]:
    """Every role's answer for one route and method; the cells that differ from the table."""
    wrong = []
    for role, client in every.items():
        status, goes_to = expected(least, role, allowed_status)
        refused = status in (403, 405) or goes_to is not None
        before = state() if refused and method == "POST" else None
        response = rolled_back(lambda c=client: _send(c, method, path, body))
        cell = f"{method} {path} as {role}: got {response.status_code}, expected {status}"
        if response.status_code != status:
            wrong.append(cell)
        elif goes_to and not response["Location"].startswith(goes_to):
            wrong.append(f"{cell}, redirected to {response['Location']} instead of {goes_to}")
        elif before is not None and state() != before:
            wrong.append(f"{cell}, but the refused request changed the database")
        elif status == 403 and role != "anonymous" and method == "GET":
            text = response.content.decode()
            if "needs the" not in text and "permission" not in text.lower():
                wrong.append(f"{cell}, but the 403 page does not say why")
    return wrong


def test_the_table_names_every_page_route():
    named = {page.route for page in PAGES}
    served = {route for route in served_routes() if not route.startswith("admin/")}
    assert sorted(served - named) == [], "page routes without a row in tests/reliability/security_pages.py"
    assert sorted(named - served) == [], "rows for routes that are no longer served"


def test_the_matrix_holds_every_role():
    assert {"anonymous", "viewer", "reviewer", "operator", "admin"} <= set(ROLES)
    assert set(ROLES) == set(RANK) - {"staff"}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("page", PAGES, ids=[p.id for p in PAGES])
def test_each_role_gets_what_it_may_on_each_page(world, sessions, page, method):  # noqa: F811
    least, status = (page.get, page.get_status) if method == "GET" else (page.post, page.post_status)
    path = page.path.format(**world.ids)
    every = clients(world) if page.route.endswith("logout/") else sessions  # a logout ends its sessions
    wrong = _check(every, method, path, least, status, page.body)
    assert not wrong, "\n".join(wrong)


# The Django admin: staff only, whatever the role. Its check is `is_staff` alone, so the cells below are
# anonymous (the site's login), operator (the highest role without staff: the admin's own login) and admin,
# who gets the admin's own answers: 200 (a page, or a form with its errors for an empty POST), 302 (to the
# index when an object does not exist), 403 (read-only records), 404 (the catch-all), 405 (autocomplete).
ADMIN_PUBLIC = {"admin/login/", "admin/logout/"}
ADMIN_OWN = (200, 302, 403, 404, 405)


def test_the_admin_is_for_staff_only(world, sessions):  # noqa: F811
    every = dict(sessions)
    wrong, cells = [], 0
    for route in admin_routes():
        path = admin_path(route)
        for method in ("GET", "POST"):
            for role in ("anonymous", "operator", "admin"):
                response = rolled_back(lambda c=every[role], m=method, p=path: _send(c, m, p, None))
                got, where, cells = response.status_code, response.get("Location", ""), cells + 1
                to_login = got == 302 and (where.startswith(LOGIN) or where.startswith(ADMIN_LOGIN))
                if route in ADMIN_PUBLIC:
                    ok = got in (200, 302, 405)
                elif role == "anonymous":
                    ok = to_login
                elif role == "operator":
                    ok = got == 302 and where.startswith(ADMIN_LOGIN)
                else:
                    ok = got in ADMIN_OWN and not to_login
                if not ok:
                    wrong.append(f"{method} {path} as {role}: {got} {where}")
        if route in ADMIN_PUBLIC:
            every = clients(world)  # the logout ended these sessions: later routes get fresh ones
    assert not wrong, "\n".join(wrong)
    assert cells >= 6 * 200, "fewer admin routes than the registered models make"
