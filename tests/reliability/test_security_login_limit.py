"""Login rate limiting (apps/core/login_limits.py): N failed sign-ins for one user name from one address
lock that pair out, even for the right password; a success clears the count; other users and other
addresses are unaffected; the lock ends on time; the Django admin's login obeys the same lock."""

import time

import pytest
from django.test import Client

from apps.core import login_limits
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
HOME, ELSEWHERE = "127.0.0.1", "10.9.8.7"


@pytest.fixture(autouse=True)
def _three_tries(settings):
    settings.RETORT_LOGIN_MAX_FAILURES = 3
    settings.RETORT_LOGIN_WINDOW_S = 600
    settings.RETORT_LOGIN_LOCKOUT_S = 900


def _login(username, password, address=HOME, path="/accounts/login/"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    signed_in = "_auth_user_id" in client.session
    return response, signed_in


def test_n_failures_lock_the_pair_out_even_for_the_right_password():
    user = UserFactory()
    for _ in range(2):
        response, _ = _login(user.username, "wrong")
        assert response.status_code == 200 and "didn't match" in response.content.decode()
    response, _ = _login(user.username, "wrong")  # the third reaches the limit
    page = response.content.decode()
    assert response.status_code == 429
    assert 'class="errors" role="alert"' in page
    assert "Too many failed sign-ins" in page and "locked for 15 minutes" in page and "try again after" in page
    response, signed_in = _login(user.username, TEST_PASSWORD)
    assert response.status_code == 429 and not signed_in
    response, signed_in = _login(user.username.upper(), TEST_PASSWORD)  # user names are one by case
    assert response.status_code == 429 and not signed_in


def test_a_success_clears_the_count():
    user = UserFactory()
    for _ in range(2):
        _login(user.username, "wrong")
    response, signed_in = _login(user.username, TEST_PASSWORD)
    assert response.status_code == 302 and signed_in
    for _ in range(2):
        response, _ = _login(user.username, "wrong")
        assert response.status_code == 200  # counting from zero again: two are under the limit
    _, signed_in = _login(user.username, TEST_PASSWORD)
    assert signed_in


def test_other_users_and_other_addresses_are_unaffected():
    locked, other = UserFactory(), UserFactory()
    for _ in range(3):
        _login(locked.username, "wrong")
    assert _login(locked.username, TEST_PASSWORD)[0].status_code == 429
    assert _login(other.username, TEST_PASSWORD, HOME)[1]
    assert _login(locked.username, TEST_PASSWORD, ELSEWHERE)[1]
    assert _login("nobody-by-this-name", "x")[0].status_code == 200  # unknown names count separately


def test_the_lock_ends_after_the_lockout(monkeypatch):
    user = UserFactory()
    for _ in range(3):
        _login(user.username, "wrong")
    assert not _login(user.username, TEST_PASSWORD)[1]
    later = time.time() + 901
    monkeypatch.setattr(login_limits.time, "time", lambda: later)
    assert _login(user.username, TEST_PASSWORD)[1]


def test_the_admin_login_obeys_the_same_lock():
    admin = UserFactory(is_staff=True, is_superuser=True)
    for _ in range(3):
        response, _ = _login(admin.username, "wrong", path="/admin/login/")
    assert "Too many failed sign-ins" in response.content.decode()
    response, signed_in = _login(admin.username, TEST_PASSWORD, path="/admin/login/")
    assert not signed_in and "try again after" in response.content.decode()
    assert not _login(admin.username, TEST_PASSWORD)[1]  # one lock for both login pages


def test_the_limit_can_be_turned_off(settings):
    settings.RETORT_LOGIN_MAX_FAILURES = 0
    user = UserFactory()
    for _ in range(6):
        _login(user.username, "wrong")
    assert _login(user.username, TEST_PASSWORD)[1]


def test_every_authenticate_call_is_refused_while_locked(rf):
    """The backend's own check: a sign-in form of the future (or a plugin) that calls authenticate() itself."""
    from django.contrib.auth import authenticate

    user = UserFactory()
    request = rf.post("/somewhere/", REMOTE_ADDR=HOME)
    assert authenticate(request, username=user.username, password=TEST_PASSWORD) == user
    for _ in range(3):
        assert authenticate(request, username=user.username, password="wrong") is None
    assert authenticate(request, username=user.username, password=TEST_PASSWORD) is None
    assert authenticate(rf.post("/", REMOTE_ADDR=ELSEWHERE), username=user.username, password=TEST_PASSWORD) == user


def test_with_the_cache_unreachable_sign_in_still_works_unlimited_and_says_so_in_the_log(caplog):
    from tests.reliability.harness import free_port, this_process_on

    user = UserFactory()
    with this_process_on(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        for _ in range(3):
            response, signed_in = _login(user.username, "wrong")
            assert response.status_code == 200 and not signed_in
        response, signed_in = _login(user.username, TEST_PASSWORD)
    assert response.status_code == 302 and signed_in, "the limiter fails open, not with a 500"
    assert "Login limiter off: the cache is unreachable" in caplog.text
