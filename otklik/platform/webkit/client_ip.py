"""The one place that says who a request comes from.

`X-Forwarded-For` is believed only when the socket peer is one of `settings.trusted_proxies`; then the
address is the right-most entry that is not itself a trusted proxy. Otherwise it is the socket peer.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=32)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: HTTPConnection, trusted_proxies: tuple[str, ...] | None = None) -> str:
    """The client's address; "unknown" when the server does not know the peer (e.g. some test transports)."""
    peer = request.client.host if request.client else "unknown"
    if trusted_proxies is None:
        otklik = getattr(request.app.state, "otklik", None)
        trusted_proxies = tuple(otklik.settings.trusted_proxies) if otklik is not None else ()
    if not trusted_proxies:
        return peer
    networks = _networks(trusted_proxies)
    if not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed entry: do not let it name the client
    return hops[0] if hops else peer
