"""Host and Origin checks against DNS rebinding.

Without API keys the service is open with admin rights on loopback. A web page the user visits can
point its own DNS name at 127.0.0.1 ("rebinding") and then call the service from the browser as a
same-origin request: the browser sends ``Host: attacker.example``. So a keyless service answers only
requests whose Host is a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``, any port) or a name
in ``service.allowed_hosts``, and refuses browser requests whose Origin is another site (a cross-site
form post needs no CORS preflight).

With API keys configured a rebinding page cannot authenticate, so any Host is accepted unless
``allowed_hosts`` lists names, in which case only those (and loopback names) are. The probes and
``/metrics`` need no key and read no data: they answer any Host, since a Kubernetes probe or a
Prometheus scrape addresses the pod by IP.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from vectorseam.service.auth import is_loopback

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
LOOPBACK_NAMES = "localhost, 127.0.0.1, [::1]"


def host_name(authority: str) -> str | None:
    """The host of a Host header value (``name[:port]``, ``[v6]:port``), lowercased; None when malformed."""
    value = authority.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        host, rest = value[1:end], value[end + 1:]
        if end < 0 or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        return host or None
    host, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return None  # an unbracketed IPv6 address or garbage
    return host.rstrip(".") or None


def _matches(pattern: str, name: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


class HostPolicy:
    def __init__(self, allowed_hosts: list[str], keyless: bool, cors_origins: list[str]) -> None:
        self.allowed = list(allowed_hosts)
        self.keyless = keyless
        self.cors_origins = set(cors_origins)

    def host_ok(self, name: str) -> bool:
        return is_loopback(name) or any(_matches(p, name) for p in self.allowed)

    def rejection(self, path: str, headers: Mapping[str, str]) -> tuple[int, str, str] | None:
        """``(status, error type, message)`` for a request this server must not answer, else None."""
        if path in EXEMPT_PATHS or (not self.keyless and not self.allowed):
            return None
        raw = headers.get("host", "")
        name = host_name(raw)
        if name is None or not self.host_ok(name):
            why = (f"without API keys this server answers only loopback names ({LOOPBACK_NAMES}) and the names "
                   "in service.allowed_hosts, so that a web page cannot reach it by rebinding a DNS name"
                   if self.keyless else "it answers only the names in service.allowed_hosts")
            return 421, "misdirected_request", (f"host {raw[:255]!r} is not served here: {why}; "
                                                "add the name to service.allowed_hosts if it is yours")
        origin = headers.get("origin")
        if self.keyless and origin is not None and not self._origin_ok(origin):
            return 403, "permission_error", (
                f"requests from the web page at {origin[:255]!r} are refused: without API keys this server "
                f"accepts browser requests only from pages on loopback names ({LOOPBACK_NAMES}), "
                "service.allowed_hosts or service.cors_origins")
        return None

    def _origin_ok(self, origin: str) -> bool:
        if origin in self.cors_origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        name = host_name(parts.netloc) if parts.scheme in ("http", "https") else None
        return name is not None and self.host_ok(name)
