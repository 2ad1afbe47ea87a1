"""TRUSTED_PROXY_HOPS: behind a reverse proxy the client address comes from X-Forwarded-For
(rate limits and audit need it), and without one a client cannot forge it."""

from __future__ import annotations

from dataclasses import replace

from flask import request

from csss_fhir import create_app


def remote_address(settings, headers: dict) -> str:
    app = create_app(settings)

    @app.get("/_test/remote")
    def remote():
        return {"address": request.remote_addr, "scheme": request.scheme}

    response = app.test_client().get("/_test/remote", headers=headers,
                                     environ_base={"REMOTE_ADDR": "10.0.0.2"})
    return response.get_json()


def test_forwarded_headers_are_ignored_without_a_trusted_proxy(settings):
    seen = remote_address(settings, {"X-Forwarded-For": "203.0.113.9",
                                     "X-Forwarded-Proto": "https"})
    assert seen == {"address": "10.0.0.2", "scheme": "http"}


def test_one_trusted_proxy_gives_the_client_address_it_saw(settings):
    seen = remote_address(replace(settings, trusted_proxy_hops=1),
                          {"X-Forwarded-For": "198.51.100.1, 203.0.113.9",
                           "X-Forwarded-Proto": "https"})
    # the proxy appended the peer it saw; what the client wrote before that is not trusted
    assert seen == {"address": "203.0.113.9", "scheme": "https"}
