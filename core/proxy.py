"""Deployments behind a reverse proxy: the client address and scheme a trusted proxy reports.

With `TRUSTED_PROXIES` set (addresses or networks), a request whose peer is one of them gets
`REMOTE_ADDR` replaced by the real client: the rightmost `X-Forwarded-For` entry that is not a
trusted proxy (entries left of it were written by the client and prove nothing). Requests from
any other peer have their `X-Forwarded-*` headers removed, so neither this nor Django's
`SECURE_PROXY_SSL_HEADER` / `USE_X_FORWARDED_HOST` ever act on a spoofed value. Unset, nothing
changes.
"""
import ipaddress
from functools import lru_cache

from django.conf import settings

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT")


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address, networks) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(meta: dict, networks) -> str:
    """The client behind the chain of trusted proxies that ends at REMOTE_ADDR."""
    peer = meta.get("REMOTE_ADDR", "")
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # a malformed entry: keep the nearest proxy that is trusted
        client = str(address)
        if not _trusted(address, networks):
            break
    return client


class TrustedProxyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        networks = _networks(tuple(settings.TRUSTED_PROXIES))
        if networks:
            meta = request.META
            if _trusted(_address(meta.get("REMOTE_ADDR", "")), networks):
                meta["REMOTE_ADDR"] = client_address(meta, networks)
            else:
                for header in FORWARDED_HEADERS:
                    meta.pop(header, None)
        return self.get_response(request)
