"""Which registries the engine reaches without verified TLS, by its own rules."""

import ipaddress

import pytest

from socker.registrytrust import ENGINE_DEFAULTS, hostname, reached_without_verified_tls, without_dns

ENGINE = {"InsecureRegistryCIDRs": ["127.0.0.0/8", "10.9.0.0/16"],
          "IndexConfigs": {"docker.io": {"Secure": True}, "cache.site:5000": {"Secure": False},
                           "mirror.site:443": {"Secure": True}}}


def addresses(*texts):
    return lambda name: [ipaddress.ip_address(text) for text in texts]


@pytest.mark.parametrize("host, resolved, plain", [
    ("cache.site:5000", (), True),  # insecure-registries names it
    ("mirror.site:443", ("10.9.1.1",), False),  # the engine's own entry wins over the networks
    ("registry.site:5443", ("10.9.3.4",), True),  # resolves into an insecure network
    ("registry.site:5443", ("192.0.2.1", "10.9.3.4"), True),  # any of its addresses
    ("registry.site:5443", ("192.0.2.1", "2001:db8::1"), False),
    ("registry.site:5443", (), False),  # does not resolve: the engine takes it for secure
    ("[::1]:5443", ("::1",), False),  # the IPv6 loopback is no insecure network by default
])
def test_the_engines_view(host, resolved, plain):
    assert reached_without_verified_tls(host, ENGINE, addresses(*resolved)) is plain


@pytest.mark.parametrize("host, plain", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.9.9.9", True),
    ("[::1]:5000", False), ("registry.example.org:5443", False), ("socker-plain.test:80", False),
])
def test_without_dns_a_configuration_knows_the_loopback_literals(host, plain):
    assert reached_without_verified_tls(host, ENGINE_DEFAULTS, without_dns) is plain


@pytest.mark.parametrize("host, name", [("h:5000", "h"), ("h", "h"), ("[::1]:5000", "::1"), ("[::1]", "::1"),
                                        ("10.0.0.1:80", "10.0.0.1")])
def test_hostname(host, name):
    assert hostname(host) == name
