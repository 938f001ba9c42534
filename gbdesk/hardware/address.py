"""Which address other machines reach this one at, found without the internet.

A service listening on 127.0.0.1 (or ``localhost``, ``::1``) is reachable from this machine only;
one listening on every interface (``0.0.0.0``, ``::``) is reached through the machine's LAN
address; one listening on a particular address is reached at that address. The LAN address is
the source address the routing table would pick for a private destination (a UDP socket's
``connect`` sends no packet), else an address the host name resolves to; loopback and
link-local addresses never count. An operator can name the address instead (``advertise``), for
a machine behind NAT or with several networks.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
# Private destinations whose route tells which interface faces the LAN. No packet is sent.
_PROBE_DESTINATIONS = ("10.255.255.255", "192.168.255.255", "172.31.255.255")


@dataclass(frozen=True)
class Advertised:
    """The host other machines should use, and whether they can use it at all."""

    host: str
    reachable: bool  # False: the address works on this machine only (loopback)

    def url(self, port: int, path: str = "") -> str:
        """``http://host:port`` + ``path``, IPv6 addresses in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}{path}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.x, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _usable(address: str) -> bool:
    """An address another machine could route to: not loopback, link-local or unspecified."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def lan_address() -> str | None:
    """This machine's IPv4 LAN address, or None when it has none (loopback only)."""
    for destination in _PROBE_DESTINATIONS:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.connect((destination, 9))  # UDP: picks a route, sends nothing
                address = str(sock.getsockname()[0])
        except OSError:
            continue
        if _usable(address):
            return address
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        if _usable(address):
            return address
    return None


def advertised_host(listen_host: str, advertise: str = "") -> Advertised:
    """The address other machines reach a service listening on ``listen_host`` at.

    Args:
        listen_host: the address the service binds (a backend's ``--host``).
        advertise: the operator's choice; wins when given (a loopback choice stays
            "this machine only").
    """
    chosen = advertise.strip()
    if chosen:
        return Advertised(chosen.strip("[]"), not is_loopback(chosen))
    host = listen_host.strip()
    if host in WILDCARD_HOSTS:
        lan = lan_address()
        return Advertised(lan, True) if lan else Advertised("127.0.0.1", False)
    if is_loopback(host):
        return Advertised(host.strip("[]"), False)
    return Advertised(host.strip("[]"), True)
