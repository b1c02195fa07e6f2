"""Where a connection test may connect: the SSRF guard of every live test.

A connection test makes flowcred open a connection to an address someone typed into a form.
Left alone that is a server-side request forgery vector: Airflow disabled its connection test
by default after CVE-2023-37379. :class:`DestinationPolicy` decides per destination, *after*
DNS resolution, looking at every address a name resolves to, so a host name pointing at
``169.254.169.254`` is refused like the literal address.

Refused by default: link-local addresses (``169.254.0.0/16``, ``fe80::/10``, which hold every
cloud's metadata service), the AWS IPv6 metadata address ``fd00:ec2::254``, and the host name
``metadata.google.internal``. IPv4-mapped IPv6 forms (``::ffff:169.254.169.254``) count as
their IPv4 address.

Lists (settings ``FLOWCRED_TEST_DENY`` / ``FLOWCRED_TEST_ALLOW``, comma-separated) hold CIDRs,
single addresses and host names; a name starting with ``.`` covers a whole domain. Precedence:
a **deny** entry always refuses; otherwise an **allow** entry admits, even a destination the
defaults refuse (a name is admitted by its name, an address only when every resolved address
is allowed); otherwise the defaults apply. Loopback and private ranges are not refused by
default: on-premises databases live there. Deny them with ``FLOWCRED_TEST_DENY`` if the API is
exposed to people who must not probe the internal network.

Known limit: the driver resolves the name again when it connects, so a DNS answer changing in
between (rebinding) is not caught here; HTTP tests re-check after every redirect.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flowcred.connectors.base import ConnectionTestError
from flowcred.errors import DestinationRefused

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Resolves ``(host, port)`` to address strings; raises ``OSError`` when the name is unknown.
HostResolver = Callable[[str, int | None], Sequence[str]]

DEFAULT_REFUSED_NETWORKS: tuple[IpNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
DEFAULT_REFUSED_NAMES: tuple[str, ...] = ("metadata.google.internal",)

# A bound on how long a name may be (DNS: 253) and how many addresses are looked at.
_MAX_HOST = 253
_MAX_ADDRESSES = 64


def system_resolver(host: str, port: int | None) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (TCP), in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def _normal_name(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _address(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class DestinationList:
    """Networks and host names (``name`` exact, ``.domain`` for the domain and below)."""

    networks: tuple[IpNetwork, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> DestinationList:
        """Parse CIDRs, addresses and host names; raises ``ValueError`` naming a bad entry."""
        networks: list[IpNetwork] = []
        names: list[str] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = _normal_name(entry)
            label = name.removeprefix(".")
            if not label or len(label) > _MAX_HOST or any(c in label for c in "/:@ "):
                raise ValueError(f"not a CIDR, address or host name: {entry!r}")
            names.append(name)
        return cls(tuple(networks), tuple(names))

    def has_name(self, host: str) -> bool:
        name = _normal_name(host)
        return any(
            name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:]))
            for entry in self.names
        )

    def has_address(self, address: IpAddress) -> bool:
        return any(address in network for network in self.networks)


_DEFAULTS = DestinationList(DEFAULT_REFUSED_NETWORKS, DEFAULT_REFUSED_NAMES)


@dataclass(frozen=True)
class DestinationPolicy:
    """Decides whether a test may connect to ``host:port`` (see the module docstring).

    ``resolver`` is injectable so tests can make a name resolve to a link-local address
    without touching ``/etc/hosts``.
    """

    deny: DestinationList = field(default_factory=DestinationList)
    allow: DestinationList = field(default_factory=DestinationList)
    resolver: HostResolver = system_resolver

    @classmethod
    def from_lists(
        cls,
        deny: Iterable[str] = (),
        allow: Iterable[str] = (),
        resolver: HostResolver = system_resolver,
    ) -> DestinationPolicy:
        return cls(DestinationList.parse(deny), DestinationList.parse(allow), resolver)

    @classmethod
    def from_settings(cls, settings: object) -> DestinationPolicy:
        """The policy of ``FLOWCRED_TEST_DENY`` / ``FLOWCRED_TEST_ALLOW``."""
        return cls.from_lists(
            getattr(settings, "test_deny", ()) or (), getattr(settings, "test_allow", ()) or ()
        )

    def check_host(self, host: str, port: int | None = None) -> list[IpAddress]:
        """Return the addresses ``host`` resolves to if a test may connect there.

        Raises :class:`~flowcred.errors.DestinationRefused` for a refused destination, and
        :class:`~flowcred.connectors.base.ConnectionTestError` ("host not found") when the
        name does not resolve.
        """
        if not isinstance(host, str) or not host.strip() or len(host) > _MAX_HOST:
            raise DestinationRefused(str(host)[:64], "not a host name")
        literal = _address(host)
        if literal is None:
            name = _normal_name(host)
            if self.deny.has_name(name):
                raise DestinationRefused(host, "on the deny list (FLOWCRED_TEST_DENY)")
            if self.allow.has_name(name):
                return self._addresses(host, port, checked=False)
            if _DEFAULTS.has_name(name):
                raise DestinationRefused(host, "cloud metadata service")
            addresses = self._addresses(host, port, checked=True)
        else:
            addresses = [literal]
        self._check_addresses(host, addresses)
        return addresses

    def check_url(self, url: str) -> list[IpAddress]:
        """:meth:`check_host` for the host and port of an ``http(s)`` URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused(parts.hostname or "", "only http and https URLs are tested")
        try:
            port = parts.port
        except ValueError:
            raise DestinationRefused(parts.hostname, "invalid port") from None
        return self.check_host(parts.hostname, port or (443 if parts.scheme == "https" else 80))

    def _addresses(self, host: str, port: int | None, *, checked: bool) -> list[IpAddress]:
        try:
            texts = list(self.resolver(host, port))[:_MAX_ADDRESSES]
        except (OSError, UnicodeError):
            raise ConnectionTestError(f"host not found: {host}") from None
        addresses = [a for a in (_address(t) for t in texts) if a is not None]
        if not addresses and checked:
            raise ConnectionTestError(f"host not found: {host}")
        return addresses

    def _check_addresses(self, host: str, addresses: Sequence[IpAddress]) -> None:
        for address in addresses:
            if self.deny.has_address(address):
                raise DestinationRefused(
                    host, f"{address} is on the deny list (FLOWCRED_TEST_DENY)"
                )
        if addresses and all(self.allow.has_address(a) for a in addresses):
            return
        for address in addresses:
            if _DEFAULTS.has_address(address) and not self.allow.has_address(address):
                what = "a link-local" if address.is_link_local else "a cloud-metadata"
                raise DestinationRefused(host, f"resolves to {address}, {what} address")
