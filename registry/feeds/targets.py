"""Webhook targets: a subscriber's URL, parsed and resolved, and the guard against private addresses."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry.errors import Invalid

__all__ = ["Target", "check_target", "is_public"]

UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")  # spaces and control characters, CR and LF among them
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the addresses its host resolved to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def check_target(url: str, allow_private: bool) -> Target:
    """Parse and resolve a webhook URL. Raises Invalid for a bad URL or a refused address.

    Loopback, private, link-local and other non-public addresses are refused
    unless `allow_private` (REGISTRY_WEBHOOK_ALLOW_PRIVATE=1): a subscriber must
    not make the registry reach into its own network.
    """
    def refuse(reason: str) -> Invalid:
        return Invalid(f"the webhook URL cannot be used: {reason}", {"url": [reason]})

    if UNSAFE.search(url):
        raise refuse("must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise refuse(f"not a URL ({error})") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refuse("must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise refuse("must not carry credentials")
    host = parts.hostname
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise refuse(f"the host {host!r} cannot be resolved ({error})") from error
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise refuse(f"{host!r} resolves to {address}, a loopback, private or reserved address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, port, path, addresses)


def is_public(address: str) -> bool:
    """Whether an address is globally routable, and so is any IPv4 address an IPv6 one carries
    (IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not (ip.is_global and not ip.is_multicast):
        return False
    return all(is_public(str(inner)) for inner in embedded_ipv4(ip))


def embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [inner for inner in (ip.ipv4_mapped, ip.sixtofour) if inner is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 or any(ip in network for network in NAT64):  # IPv4-compatible ::a.b.c.d, NAT64
        found.append(low32)
    return found
