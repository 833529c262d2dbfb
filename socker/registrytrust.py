"""Whether the engine reaches a registry over verified TLS, by the engine's own rules.

The engine takes a registry for insecure, and reaches it over HTTPS without checking
its certificate and then over plain HTTP, when its daemon configuration lists it in
insecure-registries, or when its host is, or resolves to, an address in one of the
daemon's insecure networks (127.0.0.0/8 unless configured otherwise). Whoever listens
there, any local user on a loopback port nothing else holds, reads what is sent:
a registry's credentials among it. The engine's RegistryConfig (GET /info) says which.
"""

import ipaddress
import socket

# What a daemon with no registry settings of its own takes for insecure.
ENGINE_DEFAULTS = {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}}


def reached_without_verified_tls(host, registry_config, resolve=None):
    """Whether the engine with `registry_config` (its RegistryConfig) reaches the registry `host`
    (host[:port]) without verified TLS. `resolve` gives a name's addresses (default: the system's
    resolver, as the engine does); a name that does not resolve is taken for secure, as the engine
    takes it."""
    index = (registry_config.get("IndexConfigs") or {}).get(host)
    if index is not None:
        return not index.get("Secure", True)
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in registry_config.get("InsecureRegistryCIDRs") or []]
    addresses = (resolve or _resolved)(hostname(host))
    return any(address in network for address in addresses for network in networks
               if address.version == network.version)


def without_dns(name):
    """A name's addresses as far as they are known without asking a resolver: an address literal's
    own, and localhost's; for a configuration that is checked before any engine is asked."""
    if name == "localhost":
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        return []


def hostname(host):
    """The name or address of host[:port], [v6-address][:port] included."""
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _resolved(name):
    literal = without_dns(name)
    if literal and name != "localhost":
        return literal
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return [ipaddress.ip_address(entry[4][0].split("%", 1)[0]) for entry in found]
