"""The client's address and scheme when Lontar runs behind a reverse proxy.

Behind nginx or Caddy every connection comes from the proxy, so `request.remote` is the
proxy's address for everyone: the dashboard's per-address login limit would count all staff
as one client and the audit log would record 127.0.0.1. The proxy says who the client was in
`X-Forwarded-For` and whether it spoke HTTPS in `X-Forwarded-Proto`, but any client can send
those headers too, so they are believed only when the connection itself comes from an address
in `LONTAR_TRUSTED_PROXIES` (`Settings.trusted_proxies`):

- The client is the rightmost X-Forwarded-For entry that is not a trusted proxy: each proxy
  appends the address it saw, so entries left of that one were written by the client and
  prove nothing. If every entry is a trusted proxy, the leftmost one.
- The scheme is X-Forwarded-Proto's entry for that same hop when the header has one entry per
  X-Forwarded-For entry, else its rightmost (nginx and Caddy set a single value). Only `http`
  and `https` are accepted.
- A header that a trusted proxy passed on but that cannot be read where it matters answers
  400 rather than a guess: the proxy is misconfigured, and a guessed address would put
  clients together in the limiter. Entries left of the client's are never parsed, so junk a
  client sends through nginx (which appends the real address after it) changes nothing.
- From any other peer both headers are ignored: the socket's peer is the client.

Handlers keep reading `request.remote` and `request.secure`; the middleware hands them
`request.clone(remote=..., scheme=...)`, so no call site needs to know about proxies.

Why not aiohttp-remotes (aio-libs; 1.4.0 tried with this aiohttp): `XForwardedStrict` wants
exactly one X-Forwarded-For entry per configured hop, so a request without the header
(Prometheus scraping 127.0.0.1:8080, a health check) or with an entry the client brought
along (nginx's `$proxy_add_x_forwarded_for` appends to it) is refused with a 400;
`XForwardedRelaxed` and `XForwardedFiltered` believe the headers whoever sends them, so a
client reaching Lontar directly could pick its address (and get past the login limit); and
`XForwardedFiltered` also applies `X-Forwarded-Host`, which nginx passes through from the
client unless told otherwise. The rule above fits in this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger(__name__)

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
SCHEMES = frozenset({"http", "https"})


class Unreadable(ValueError):
    """A forwarded header from a trusted proxy that cannot be read (answered with a 400)."""


def _address(text: str) -> Address | None:
    """An address as the proxy or the socket wrote it, or None when it is none; an
    IPv4-mapped IPv6 address (a dual-stack socket) counts as the IPv4 address it carries."""
    try:
        addr = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address, networks: Sequence[Network]) -> bool:
    return any(addr in net for net in networks)


def _entries(values: list[str]) -> list[str]:
    """Several header lines are one comma-separated list (RFC 9110, 5.3); empty entries
    (`a,,b`, an empty header) say nothing and are dropped."""
    return [p for value in values for part in value.split(",") if (p := part.strip())]


def forwarded_client(forwarded_for: list[str], networks: Sequence[Network]) -> int | None:
    """The index in X-Forwarded-For entries of the client (see the module docstring), or
    None when there are no entries. Raises `Unreadable` for an entry it had to read and
    could not."""
    if not forwarded_for:
        return None
    for index in range(len(forwarded_for) - 1, -1, -1):
        addr = _address(forwarded_for[index])
        if addr is None:
            raise Unreadable(hdrs.X_FORWARDED_FOR)
        if not _trusted(addr, networks):
            return index
    return 0


def forwarded_scheme(protos: list[str], index: int | None, hops: int) -> str | None:
    """The scheme the client used, from X-Forwarded-Proto entries (None: no header)."""
    if not protos:
        return None
    proto = protos[index] if index is not None and len(protos) == hops else protos[-1]
    proto = proto.lower()
    if proto not in SCHEMES:
        raise Unreadable(hdrs.X_FORWARDED_PROTO)
    return proto


def client_of(request: web.Request, networks: Sequence[Network]) -> web.Request:
    """The request as its handlers should see it: with the forwarded address and scheme if it
    came through a trusted proxy, else unchanged."""
    peer_text = request.remote or ""
    peer = _address(peer_text)
    if peer is None or not _trusted(peer, networks):
        return request
    headers = request.headers
    forwarded_for = _entries(headers.getall(hdrs.X_FORWARDED_FOR, []))
    index = forwarded_client(forwarded_for, networks)
    scheme = forwarded_scheme(_entries(headers.getall(hdrs.X_FORWARDED_PROTO, [])), index,
                              len(forwarded_for))
    if index is None and scheme is None:
        return request
    remote = peer_text if index is None else str(_address(forwarded_for[index]))
    return request.clone(remote=remote, scheme=scheme or request.scheme)


def middlewares(networks: Sequence[Network]) -> list[Middleware]:
    """The middleware for `web.Application`, or none when no proxy is trusted (the default:
    then nothing is read from forwarded headers at all)."""
    if not networks:
        return []
    trusted = tuple(networks)

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            request = client_of(request, trusted)
        except Unreadable as exc:
            # the proxy's address only: the header's entries may be a client's address
            log.warning("unreadable %s from trusted proxy %s", exc, request.remote)
            raise web.HTTPBadRequest(text=f"unreadable {exc} header") from None
        return await handler(request)

    return [forwarded]
