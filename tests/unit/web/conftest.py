"""Helpers for the UI's Flask test-client tests: sign in through the real /login form."""

from __future__ import annotations

import re

import pytest

from tests import factories


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


class Browser:
    """A test client that signs in through the UI and posts forms with their CSRF token."""

    def __init__(self, app, client) -> None:
        self.app = app
        self.client = client

    def sign_in(self, email: str, password: str, role: str) -> None:
        token = csrf_of(self.client.get("/login").get_data(as_text=True))
        form = {"email": email, "password": password, "csrf_token": token}
        response = self.client.post("/login", data=form)
        if role == "admin":
            assert "One-time code" in response.get_data(as_text=True)
            form["otp"] = factories.latest_code(self.app, email)
            response = self.client.post("/login", data=form)
        assert response.status_code == 302, response.get_data(as_text=True)

    def token(self, path: str) -> str:
        return csrf_of(self.client.get(path).get_data(as_text=True))

    def post(self, path: str, data: dict | None = None, *, page: str | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(page or "/account/password"))
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def browser(app, client):
    return Browser(app, client)


@pytest.fixture
def signed_in(app, browser):
    """`signed_in("doctor")` -> (browser, user id, patient id) for a fresh user."""
    def make(role: str, **kwargs):
        with app.app_context():
            user, password = factories.make_user(role, **kwargs)
            ids = (user.email, user.id, user.patient_id)
        browser.sign_in(ids[0], password, role)
        return browser, ids[1], ids[2]

    return make
