"""The HTTP side of rate limits (the token buckets are in rate_limits.py): who sent a request,
and the Retry-After a limited one gets.

Limits per client use `client_address`: behind a reverse proxy every request comes from the
proxy, so one attacker would lock out everyone (or, per-proxy, nobody). Only the proxies named
in DRIPCARE_TRUSTED_PROXIES are believed about who connected to them; uvicorn's own proxy
header handling is turned off (web/serving.py) so this is the one rule.
"""

from __future__ import annotations

import math
from ipaddress import ip_address

from starlette.requests import HTTPConnection

from dripcare.config import Settings


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def client_address(request: HTTPConnection, settings: Settings) -> str:
    """The address of whoever sent this request, as far as trusted proxies vouch for it.

    X-Forwarded-For is read right to left: each trusted hop names the one before it, and the
    first address not in DRIPCARE_TRUSTED_PROXIES is the client (entries further left were
    written by the client and prove nothing). Without trusted proxies the socket peer is it."""
    peer = request.client.host if request.client else "unknown"
    networks = settings.proxy_networks
    if not networks or not _trusted(peer, settings):
        return peer
    hops = [
        hop.strip()
        for line in request.headers.getlist("x-forwarded-for")
        for hop in line.split(",")
    ]
    for hop in reversed(hops):
        if not _trusted(hop, settings):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, settings: Settings) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.proxy_networks)
