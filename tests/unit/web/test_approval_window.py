"""Issue 11 item 8 through the test client: approvals within one step-up window (a code
typed at approval renews it, and the page says how long is left)."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine

from csss_fhir.models import Scan, User, db, utcnow
from csss_fhir.security.authentication import issue_token
from tests import factories


def _scans(app, *states: str) -> list[str]:
    with app.app_context():
        return [factories.make_scan(state)[0] for state in states]


def _state(app, study: str) -> str:
    with app.app_context():
        return db.session.get(Scan, study).task.state


def _stale_admin(app, client) -> tuple[str, str]:
    """An admin signed in an hour ago (the sign-in's second factor has lapsed)."""
    with app.app_context():
        admin, password = factories.make_user("admin")
        token = issue_token(db.session.get(User, admin.id),
                            otp_at=int(utcnow().timestamp()) - 3600, minutes=30)
        email = admin.email
    client.set_cookie("access_token_cookie", token)
    return email, password


def _code(app, browser, page: str, email: str, password: str) -> str:
    assert browser.post(f"{page}/code", {"password": password}, page=page).status_code == 200
    return factories.latest_code(app, email)


def test_a_code_typed_at_approval_covers_the_next_approvals(app, client, browser):
    first, second = _scans(app, "PHARMACIST_COMPLETED", "PHARMACIST_COMPLETED")
    email, password = _stale_admin(app, client)
    page = f"/admin/scans/{first}"
    assert "Approval needs a second factor" in client.get(page).get_data(as_text=True)
    response = browser.post(f"{page}/approve", {"otp": _code(app, browser, page, email,
                                                             password)}, page=page)
    assert response.status_code == 302
    assert "access_token_cookie=" in response.headers.get("Set-Cookie", "")

    html = client.get(f"/admin/scans/{second}").get_data(as_text=True)
    assert re.search(r"No new code needed: your second factor stays valid for (9|10) more "
                     "minutes", html)  # 10 only when the clock has not moved a second
    page = f"/admin/scans/{second}"
    response = browser.post(f"{page}/approve", {}, page=page, follow_redirects=True)
    assert response.status_code == 200
    assert re.search(r"stays valid for (9|10) more minutes", response.get_data(as_text=True))
    assert {_state(app, first), _state(app, second)} == {"REPORT_READY"}


def test_the_window_lapses_and_the_page_asks_again(app, client, browser):
    first, second = _scans(app, "PHARMACIST_COMPLETED", "PHARMACIST_COMPLETED")
    email, password = _stale_admin(app, client)
    page = f"/admin/scans/{first}"
    code = _code(app, browser, page, email, password)
    with time_machine.travel(utcnow(), tick=False) as clock:
        assert browser.post(f"{page}/approve", {"otp": code}, page=page).status_code == 302
        clock.shift(timedelta(minutes=10, seconds=1))
        page = f"/admin/scans/{second}"
        assert "Approval needs a second factor" in client.get(page).get_data(as_text=True)
        response = browser.post(f"{page}/approve", {}, page=page)
    assert response.status_code == 401
    assert "Approval needs a second factor" in response.get_data(as_text=True)
    assert _state(app, second) == "PHARMACIST_COMPLETED"


def test_a_wrong_code_renews_nothing(app, client, browser):
    (study,) = _scans(app, "PHARMACIST_COMPLETED")
    _stale_admin(app, client)
    page = f"/admin/scans/{study}"
    response = browser.post(f"{page}/approve", {"otp": "000000"}, page=page)
    assert response.status_code == 401
    assert "That code is wrong" in response.get_data(as_text=True)
    assert "access_token_cookie=" not in response.headers.get("Set-Cookie", "")
    assert _state(app, study) == "PHARMACIST_COMPLETED"


def test_an_accepted_code_renews_the_window_even_when_the_approval_is_refused(app, client,
                                                                               browser):
    done, waiting = _scans(app, "REPORT_READY", "PHARMACIST_COMPLETED")
    email, password = _stale_admin(app, client)
    code = _code(app, browser, f"/admin/scans/{waiting}", email, password)
    page = f"/admin/scans/{done}"
    response = browser.post(f"{page}/approve", {"otp": code}, page=page)
    assert response.status_code == 409  # already released: nothing to approve
    assert "access_token_cookie=" in response.headers.get("Set-Cookie", "")
    page = f"/admin/scans/{waiting}"
    assert browser.post(f"{page}/approve", {}, page=page).status_code == 302
    assert _state(app, waiting) == "REPORT_READY"
