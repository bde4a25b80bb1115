"""Where a party's webhook may point (issue #9, SSRF): never at Parley itself or a private network.

Two checks, both pure (name resolution is the caller's, in the activity):

- `check_url` at registration and again before each delivery: `https` only (plain `http` only
  when development allows it), no userinfo, a host; a host written as an IP address, in any
  form a URL parser or `inet_aton` accepts (decimal `2130706433`, octal `0177.0.0.1`, hex
  `0x7f.1`, IPv6, IPv4-mapped IPv6 …), must be a public address.
- `check_addresses` at delivery, on every address the host name resolves to: one refused
  address refuses the delivery (a name may resolve to a public and a private address, or
  change between registration and delivery: DNS rebinding). The caller then connects to a
  checked address, never resolving the name again.

`allow_private` lifts the address rules, for development and tests with local receivers only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"https": 443, "http": 80}
# Ranges `is_global` lets through (Python 3.11) that a webhook must not reach.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # shared address space, RFC 6598
_EXTRA_REFUSED = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible IPv6 (deprecated)
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64, RFC 8215
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix, RFC 6052
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


class WebhookTargetRefused(ValueError):
    """A webhook URL or address Parley will not call; the message says why, in a sentence."""


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str  # lower case, ASCII (IDNA), no trailing dot; an IPv6 address without brackets
    port: int
    address: IPAddress | None  # when the host is written as an IP address


def check_url(url: str, *, allow_http: bool = False, allow_private: bool = False) -> WebhookTarget:
    """The URL's target, or `WebhookTargetRefused`."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise WebhookTargetRefused("The webhook URL contains spaces, control characters or '\\'.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise WebhookTargetRefused(f"The webhook URL is not valid ({err}).") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        raise WebhookTargetRefused(
            "The webhook URL must use https"
            + (" (or http, allowed in development)" if allow_http else "")
            + f", not {scheme or 'no scheme'}."
        )
    if "@" in parts.netloc:
        raise WebhookTargetRefused("The webhook URL must not contain a user name or password.")
    netloc = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if netloc.endswith(":"):  # "host:" (an empty port)
        netloc = netloc[:-1]
    if not netloc:
        raise WebhookTargetRefused("The webhook URL has no host.")
    if port == 0:
        raise WebhookTargetRefused("The webhook URL's port must not be 0.")
    host, address = _parse_host(netloc)
    if address is not None:
        check_address(address, allow_private=allow_private)
    elif not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise WebhookTargetRefused(
                f"The webhook host {host} is this machine, not a public address."
            )
        if "." not in host:
            raise WebhookTargetRefused(
                f"The webhook host {host} is not a fully qualified public domain name."
            )
    return WebhookTarget(scheme, host, port or DEFAULT_PORTS[scheme], address)


def check_address(address: IPAddress, *, allow_private: bool = False) -> None:
    """Refuses an address that is not a public unicast one (unless `allow_private`)."""
    if allow_private:
        return
    reason = address_refusal(address)
    if reason:
        raise WebhookTargetRefused(f"The webhook address {address} is {reason}, not public.")


def check_addresses(addresses: Iterable[IPAddress], *, allow_private: bool = False) -> IPAddress:
    """All the addresses a host resolved to must pass; the first one is the one to connect to."""
    checked = list(addresses)
    if not checked:
        raise WebhookTargetRefused("The webhook host resolved to no address.")
    for address in checked:
        check_address(address, allow_private=allow_private)
    return checked[0]


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook must not reach `address` (e.g. "loopback"), or None for a public one."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in _embedded_ipv4(address):
            reason = address_refusal(embedded)
            if reason:
                return f"{reason} (it carries {embedded})"
    for attribute, reason in (
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, attribute):
            return reason
    if address.version == 4 and address in _CGNAT:
        return "shared (carrier-grade NAT)"
    if address.is_private:
        return "private"
    if not address.is_global or any(address in net for net in _EXTRA_REFUSED):
        return "not globally routable"
    return None


def parse_ip(text: str) -> IPAddress | None:
    """An IPv4 address in any form URL parsers and `inet_aton` accept (1-4 parts, each
    decimal, octal with a leading 0, or hex with 0x), or a bare IPv6 address; None for a name.
    A host whose last label is a number but which is no valid address is refused outright."""
    try:
        return ipaddress.IPv6Address(text) if ":" in text else _parse_ipv4(text)
    except ipaddress.AddressValueError:
        raise WebhookTargetRefused(f"The webhook host {text} is not a valid address.") from None


def _parse_host(netloc: str) -> tuple[str, IPAddress | None]:
    if netloc.startswith("["):
        if not netloc.endswith("]") or "%" in netloc:
            raise WebhookTargetRefused(f"The webhook host {netloc} is not a valid IPv6 address.")
        address = parse_ip(netloc[1:-1])
        if address is None:
            raise WebhookTargetRefused(f"The webhook host {netloc} is not a valid IPv6 address.")
        return str(address), address
    try:
        host = netloc.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise WebhookTargetRefused(f"The webhook host {netloc} is not a valid name.") from None
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if not host or not all(_LABEL.match(label) for label in labels) or len(host) > 253:
        raise WebhookTargetRefused(f"The webhook host {netloc} is not a valid name.")
    address = parse_ip(host)
    return (str(address), address) if address is not None else (host, None)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not _NUMBER.match(parts[-1]):
        return None  # a name (WHATWG: only a numeric last label makes an IPv4 host)
    if len(parts) > 4 or not all(_NUMBER.match(part) for part in parts):
        raise ipaddress.AddressValueError(host)
    numbers = [_number(part) for part in parts]
    *front, last = numbers
    if any(n > 255 for n in front) or last >= 256 ** (5 - len(numbers)):
        raise ipaddress.AddressValueError(host)
    value = last
    for index, n in enumerate(front):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not set(part) <= set("01234567"):
            raise ipaddress.AddressValueError(part)
        return int(part, 8)
    return int(part)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 one carries and may be routed to: mapped, 6to4, Teredo, NAT64,
    IPv4-compatible."""
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        found += list(address.teredo)
    if address in _NAT64 or address in _EXTRA_REFUSED[0]:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]
