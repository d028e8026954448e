"""Where callbacks may go (``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS``): host names, IP addresses and CIDRs.

A callback URL is chosen by the client, and a callback's recorded ``last_error`` tells "connection failed" from
"HTTP 405": without a limit, a client can make the runner probe any host and port it can reach. The list is
checked twice:

- **at submit** (:meth:`HostAllowlist.allows_host`, no DNS): a name must be listed by name (case-insensitive,
  exact: no wildcards, no trailing dot); an IP literal must be a listed address or inside a listed CIDR. A name
  that is not listed is refused even if it would resolve into a listed CIDR: resolving it would make the
  request thread wait on a DNS server the client may choose (``attacker.example`` can answer as slowly as it
  likes), and an answer at submit says nothing about the address the runner connects to later anyway.
- **before each attempt** (:func:`host_runner.delivery.http.attempt`), against the setting of the runner that sends
  (an event may have been stored under another setting, before a restart): listed names are the operator's
  trust and go out as names; IP literals are checked again; any other name is resolved and *every* address it
  resolves to must be allowed, and the connection then goes to the checked addresses, not to a second lookup.

IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``) are checked as the IPv4 address they reach; addresses with a
zone (``fe80::1%eth0``) are never allowed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The error recorded on a callback event the list refused: final, and nothing about the target (no connection
#: was attempted, so there is nothing to tell; the same words whether the name resolved or not).
NOT_ALLOWED = "not allowed by HOST_RUNNER_CALLBACK_ALLOWED_HOSTS"

#: A DNS name as URLs carry it (lowercase; letters, digits, '-' and '_' per label, dot-separated).
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class HostAllowlist:
    """Hosts callbacks may go to: ``names`` (lowercase) and ``networks`` (a listed address is a /32 or /128)."""

    names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    def allows_address(self, address: IPAddress) -> bool:
        """Whether a (resolved or literal) address is inside a listed address or CIDR."""
        if isinstance(address, ipaddress.IPv6Address):
            if address.scope_id is not None:
                return False  # a zone names an interface, which the list cannot speak about
            if address.ipv4_mapped is not None:
                address = address.ipv4_mapped
        return any(address.version == network.version and address in network for network in self.networks)

    def allows_host(self, host: str) -> bool:
        """The submit-time check of a URL's host (as ``urlsplit(url).hostname`` gives it: lowercase, no
        brackets): listed by name, or an IP literal inside the list. Never resolves anything."""
        literal = ip_literal(host)
        if literal is not None:
            return self.allows_address(literal)
        return host.lower() in self.names

    def trusts_name(self, host: str) -> bool:
        """Whether ``host`` is a name listed by name (so it goes out without an address check)."""
        return ip_literal(host) is None and host.lower() in self.names


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is written as one (``urlsplit`` has removed IPv6 brackets), else None.
    Only the standard notations count: ``127.1`` or ``2130706433`` are names here (so they must be listed by
    name, which nobody does), even though the C resolver would read them as addresses."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_allowed_hosts(raw: str) -> HostAllowlist:
    """Parse the setting: comma-separated items, each a host name, an IP address, or a CIDR (IPv4 or IPv6).

    Raises ValueError naming the bad item: a CIDR with host bits set (``10.0.0.1/8``, probably a typo), a URL
    or ``host:port`` (the list is about hosts; ports are not limited), or a list with no item at all."""
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if "://" in item:
            raise ValueError(f"{item!r} is a URL: list the host alone")
        if "/" in item:
            try:
                networks.append(ipaddress.ip_network(item, strict=True))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a CIDR: {exc}") from None
            continue
        literal = ip_literal(item.strip("[]") if item.startswith("[") else item)
        if literal is not None:
            if isinstance(literal, ipaddress.IPv6Address) and literal.scope_id is not None:
                raise ValueError(f"{item!r}: addresses with a zone cannot be listed")
            networks.append(ipaddress.ip_network(literal))
            continue
        name = item.lower()
        # A last label of digits only is a mistyped address (10.0.0 or 999.1.1.1), not a name.
        if len(name) > 253 or not _NAME.fullmatch(name) or name.rsplit(".", 1)[-1].isdigit():
            raise ValueError(f"{item!r} is neither a host name, an IP address nor a CIDR")
        names.add(name)
    if not names and not networks:
        raise ValueError("no host listed")
    return HostAllowlist(frozenset(names), tuple(networks))
