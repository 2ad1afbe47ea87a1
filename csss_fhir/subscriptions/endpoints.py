"""Which rest-hook endpoints the server posts to, and posting to one (SSRF protection).

The subscriber chooses the URL, and the job engine posts from inside the hospital network:
without a rule a system client could make it reach the cloud metadata service
(169.254.169.254), an admin port on loopback or a database on the private network, and
read the answers through `$status`. So an endpoint must be `https` and every address its
host resolves to must be public, unless SUBSCRIPTION_ENDPOINT_ALLOWLIST names it
(`settings.EndpointAllowlist`):

- a host name or URL prefix entry allows `http` for that host and its loopback, private
  and unspecified addresses, but never link-local ones (169.254/16, fe80::/10, where the
  metadata services are): a hijacked DNS name must not open those;
- an IP address or network entry allows exactly the addresses it holds (and `http` to an
  endpoint written with such an address).

The rule runs when a subscription is created and again before every notification, on the
addresses the connection actually uses: the host is resolved once, each address checked,
and the socket opened to a checked address (with the host name kept for TLS and `Host`),
so a DNS answer that changed since (rebinding) cannot slip through. Redirects are never
followed, and no proxy is used (the proxy's address is not the endpoint's).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from csss_fhir.errors import ResourceValidationError
from csss_fhir.settings import EndpointAllowlist

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
FIELD = "Subscription.channel.endpoint"
ADVICE = ("use a public https URL, or ask the operator to add the host to "
          "SUBSCRIPTION_ENDPOINT_ALLOWLIST")


class EndpointRefusedError(ResourceValidationError):
    """The endpoint is one the server must not post to (422 at create; at delivery the
    subscription ends in `error` with this message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, expression=FIELD)


class EndpointUnreachableError(Exception):
    """The endpoint's host could not be resolved or connected to (retried later)."""


@dataclass(frozen=True)
class Target:
    """A checked endpoint: where to connect and what to say to it."""

    url: str
    scheme: str
    host: str  # as written (the TLS server name and the Host header)
    port: int
    addresses: tuple[Address, ...]  # every address the host resolved to, all allowed


def _kind(address: Address) -> str | None:
    """Why an address is not public, or None when it is."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is the IPv4 address it carries."""
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def resolve(host: str, port: int) -> tuple[Address, ...]:
    """Every address `host` resolves to, in the resolver's order.

    Raises:
        EndpointUnreachableError: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise EndpointUnreachableError(f"the endpoint's host {host!r} does not resolve "
                                       f"({type(err).__name__})") from err
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return tuple(found)


def check(url: str, allowlist: EndpointAllowlist) -> Target:
    """The endpoint, resolved, if the server may post to it.

    Raises:
        EndpointRefusedError: not http(s), credentials in the URL, plain http to a host not
        allow-listed, or an address that is not public and not allowed.
        EndpointUnreachableError: the host does not resolve.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as err:
        raise EndpointRefusedError(f"channel.endpoint has an invalid port; expected a "
                                   f"number from 1 to 65535 in {url!r}") from err
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise EndpointRefusedError(f"channel.endpoint {url!r} is not an http(s) URL with a "
                                   "host; a rest-hook needs one")
    if parts.username is not None:
        raise EndpointRefusedError("channel.endpoint carries a user name or password; put "
                                   "credentials in channel.header instead")
    named = allowlist.names(url)
    if parts.scheme == "http" and not named:
        raise EndpointRefusedError(f"channel.endpoint uses http to {host}; notifications "
                                   f"carry patient data, so only https is allowed; {ADVICE}")
    addresses = resolve(host, port)
    for address in addresses:
        kind = _kind(_plain(address))
        if kind is None or allowlist.covers(address) or allowlist.covers(_plain(address)):
            continue
        if named and kind not in ("link-local", "multicast"):
            continue
        # The address itself stays out of the message: it would tell a client how the
        # hospital's internal names resolve.
        raise EndpointRefusedError(f"channel.endpoint's host {host} resolves to a {kind} "
                                   f"address, which the server does not post to; {ADVICE}")
    return Target(url, parts.scheme, host, port, addresses)


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float
         ) -> tuple[int, str]:
    """POST `body` to a checked endpoint; return the status and the address that answered.

    Connects to the checked addresses in turn (the next only when one refuses the
    connection), never to a new DNS answer. The answer's body is not read.

    Raises:
        EndpointUnreachableError: no address accepted the connection, or no answer came.
    """
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header += f":{target.port}"
    last_error: Exception | None = None
    for address in target.addresses:
        if target.scheme == "https":
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                str(address), target.port, server_hostname=target.host,
                assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
                timeout=timeout, retries=False)
        else:
            pool = urllib3.HTTPConnectionPool(str(address), target.port, timeout=timeout,
                                              retries=False)
        with pool:
            try:
                response = pool.urlopen("POST", path, body=body,
                                        headers={**headers, "Host": host_header},
                                        redirect=False, preload_content=False)
            except (NewConnectionError, ConnectTimeoutError) as err:
                last_error = err
                continue
            except HTTPError as err:
                raise EndpointUnreachableError(
                    f"the endpoint did not answer ({type(err).__name__})") from err
            response.release_conn()
            return response.status, str(address)
    raise EndpointUnreachableError(
        f"the endpoint did not accept a connection ({type(last_error).__name__})")
