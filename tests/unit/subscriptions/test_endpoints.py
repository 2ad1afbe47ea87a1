"""Which rest-hook endpoints the server posts to (csss_fhir.subscriptions.endpoints): https
to public addresses only, unless SUBSCRIPTION_ENDPOINT_ALLOWLIST names them."""

from __future__ import annotations

import pytest

from csss_fhir.settings import EndpointAllowlist
from csss_fhir.subscriptions import endpoints
from csss_fhir.subscriptions.endpoints import EndpointRefusedError, EndpointUnreachableError

NONE = EndpointAllowlist()
PUBLIC = "93.184.216.34"  # a global address; `check` resolves, it does not connect


@pytest.mark.parametrize(("url", "says"), [
    (f"http://{PUBLIC}/hook", "only https"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://[::1]:8443/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped
    ("https://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
    ("https://[fe80::1]/hook", "link-local"),
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.0.10/hook", "private"),
    ("https://[fd00:ec2::254]/hook", "private"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://100.64.0.1/hook", "reserved"),  # carrier-grade NAT
    (f"https://ehr:secret@{PUBLIC}/hook", "channel.header"),
    (f"ftp://{PUBLIC}/hook", "http(s)"),
    (f"https://{PUBLIC}:99999/hook", "invalid port"),
])
def test_refused_without_an_allowlist(url, says):
    with pytest.raises(EndpointRefusedError, match=says.replace("(", r"\(").replace(")", r"\)")
                       ) as caught:
        endpoints.check(url, NONE)
    assert caught.value.expression == "Subscription.channel.endpoint"


def test_a_public_https_endpoint_is_allowed():
    target = endpoints.check(f"https://{PUBLIC}:8443/fhir-hook", NONE)
    assert (target.host, target.port, [str(a) for a in target.addresses]) == (
        PUBLIC, 8443, [PUBLIC])


def test_a_name_is_checked_by_every_address_it_resolves_to(dns):
    dns["ehr.example.test"] = [PUBLIC, "10.0.0.7"]
    with pytest.raises(EndpointRefusedError, match="ehr.example.test resolves to a private"
                       ) as caught:
        endpoints.check("https://ehr.example.test/hook", NONE)
    assert "10.0.0.7" not in str(caught.value)  # internal addresses are not told


def test_a_name_that_does_not_resolve_is_unreachable():
    with pytest.raises(EndpointUnreachableError, match="does not resolve"):
        endpoints.check("https://no-such-host.invalid/hook", NONE)


def test_an_allow_listed_host_may_use_http_and_private_addresses_but_not_link_local(dns):
    allowlist = EndpointAllowlist.parse("ehr.example.test")
    dns["ehr.example.test"] = ["10.0.0.7"]
    assert endpoints.check("http://EHR.example.test:8080/hook", allowlist).port == 8080
    dns["ehr.example.test"] = ["169.254.169.254"]  # the name now points at the metadata
    with pytest.raises(EndpointRefusedError, match="link-local"):
        endpoints.check("http://ehr.example.test:8080/hook", allowlist)
    dns["other.example.test"] = ["10.0.0.7"]
    with pytest.raises(EndpointRefusedError, match="only https"):
        endpoints.check("http://other.example.test/hook", allowlist)


def test_an_address_entry_allows_exactly_its_addresses():
    allowlist = EndpointAllowlist.parse("10.20.0.0/16, 169.254.169.254")
    endpoints.check("http://10.20.3.4/hook", allowlist)
    endpoints.check("http://169.254.169.254/hook", allowlist)  # named explicitly
    for url in ("https://10.21.0.1/hook", "https://169.254.169.253/hook"):
        with pytest.raises(EndpointRefusedError):
            endpoints.check(url, allowlist)


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8080/hooks", True),
    ("http://127.0.0.1:8080/hooks/ehr?x=1", True),
    ("http://127.0.0.1:8080/hooksmore", False),  # not on a path segment boundary
    ("http://127.0.0.1:8081/hooks", False),  # another port
    ("https://127.0.0.1:8080/hooks", False),  # another scheme
])
def test_a_url_prefix_entry_allows_what_it_prefixes(url, allowed):
    allowlist = EndpointAllowlist.parse("http://127.0.0.1:8080/hooks/")
    if allowed:
        endpoints.check(url, allowlist)
    else:
        with pytest.raises(EndpointRefusedError):
            endpoints.check(url, allowlist)


def test_a_prefix_does_not_allow_a_longer_host_or_a_user_trick(dns):
    allowlist = EndpointAllowlist.parse("https://ehr.example.test")
    dns["ehr.example.test"] = ["10.0.0.7"]
    dns["ehr.example.test.evil.test"] = ["10.0.0.8"]
    endpoints.check("https://ehr.example.test/hook", allowlist)
    with pytest.raises(EndpointRefusedError, match="private"):
        endpoints.check("https://ehr.example.test.evil.test/hook", allowlist)
    with pytest.raises(EndpointRefusedError, match="user name"):
        endpoints.check("https://ehr.example.test@ehr.example.test.evil.test/hook", allowlist)
