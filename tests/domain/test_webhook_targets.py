"""Where a webhook may point (domain/webhook_targets.py): https to a public host only."""

from __future__ import annotations

import ipaddress

import pytest

from domain.webhook_targets import (
    WebhookTargetRefused,
    address_refusal,
    check_addresses,
    check_url,
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/", "loopback"),
        ("https://127.1/", "loopback"),  # short form
        ("https://2130706433/", "loopback"),  # decimal
        ("https://0177.0.0.1/", "loopback"),  # octal
        ("https://0x7f.0.0.1/", "loopback"),  # hex parts
        ("https://0x7f000001/", "loopback"),  # hex
        ("https://127.0.0.1./", "loopback"),  # trailing dot
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback (it carries 127.0.0.1)"),  # IPv4-mapped
        ("https://[::ffff:a9fe:a9fe]/", "link-local (it carries 169.254.169.254)"),
        ("https://[2002:7f00:1::]/", "loopback (it carries 127.0.0.1)"),  # 6to4
        ("https://[64:ff9b::a9fe:a9fe]/", "link-local (it carries 169.254.169.254)"),  # NAT64
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://10.0.0.1/", "private"),
        ("https://172.16.0.1/", "private"),
        ("https://192.168.1.1:8443/", "private"),
        ("https://[fd00::1]/", "private"),
        ("https://100.64.0.1/", "carrier-grade NAT"),
        ("https://224.0.0.1/", "multicast"),
        ("https://[ff02::1]/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://0/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://192.0.2.1/", "private"),  # documentation range
    ],
)
def test_internal_addresses_in_any_form_are_refused(url, reason):
    with pytest.raises(WebhookTargetRefused, match="not public") as refused:
        check_url(url)
    assert reason in str(refused.value)
    check_url(url, allow_private=True)  # development may call them


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/", "must use https"),
        ("ftp://hooks.example.com/", "must use https"),
        ("hooks.example.com/x", "must use https"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com@127.0.0.1/", "user name or password"),
        ("https:///x", "no host"),
        ("https://hooks.example.com:0/", "port"),
        ("https://hooks.example.com:99999/", "not valid"),
        ("https://hooks.example.com\\@127.0.0.1/", "control characters or"),
        ("https://hooks.example.com /", "spaces"),
        ("https://1.2.3.4.5/", "not a valid address"),
        ("https://256.1.1.1/", "not a valid address"),
        ("https://08.1.1.1/", "not a valid address"),
        ("https://hooks.123/", "not a valid address"),
        ("https://ex%61mple.com/", "not a valid name"),
        ("https://[fe80::1%25eth0]/", "not a valid IPv6"),
        ("https://localhost/", "this machine"),
        ("https://api.localhost/", "this machine"),
        ("https://intranet/", "fully qualified"),
    ],
)
def test_malformed_or_local_urls_are_refused(url, message):
    with pytest.raises(WebhookTargetRefused) as refused:
        check_url(url)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/parley",
        "https://Hooks.Example.COM./x?y=1",
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]:8443/hook",
        "https://bücher.de/hook",
    ],
)
def test_public_https_is_accepted(url):
    target = check_url(url)
    assert target.scheme == "https"


def test_the_target_names_host_port_and_literal_address():
    named = check_url("https://Hooks.Example.COM./x")
    assert (named.host, named.port, named.address) == ("hooks.example.com", 443, None)
    literal = check_url("https://[2606:4700:4700::1111]:8443/hook")
    assert literal.host == "2606:4700:4700::1111" and literal.port == 8443
    assert literal.address == ipaddress.ip_address("2606:4700:4700::1111")
    assert check_url("https://bücher.de/").host == "xn--bcher-kva.de"


def test_http_only_when_development_allows_it():
    with pytest.raises(WebhookTargetRefused, match="must use https"):
        check_url("http://hooks.example.com/")
    assert check_url("http://hooks.example.com/", allow_http=True).port == 80
    # Allowing http does not allow private targets, nor other schemes.
    with pytest.raises(WebhookTargetRefused, match="loopback"):
        check_url("http://127.0.0.1:8000/", allow_http=True)
    with pytest.raises(WebhookTargetRefused, match="must use https"):
        check_url("ftp://hooks.example.com/", allow_http=True)
    local = check_url("http://localhost:8000/hook", allow_http=True, allow_private=True)
    assert (local.host, local.port) == ("localhost", 8000)


def addresses(*texts):
    return [ipaddress.ip_address(t) for t in texts]


def test_every_resolved_address_must_be_public():
    public = addresses("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert check_addresses(public) == public[0]  # the one to connect to
    for mixed in (
        addresses("93.184.216.34", "127.0.0.1"),
        addresses("10.1.2.3", "93.184.216.34"),
        addresses("93.184.216.34", "::ffff:169.254.169.254"),
    ):
        with pytest.raises(WebhookTargetRefused, match="not public"):
            check_addresses(mixed)
        assert check_addresses(mixed, allow_private=True) == mixed[0]
    with pytest.raises(WebhookTargetRefused, match="no address"):
        check_addresses([])


def test_address_refusal_names_the_reason():
    assert address_refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert address_refusal(ipaddress.ip_address("127.0.0.53")) == "loopback"
    assert (
        address_refusal(ipaddress.ip_address("::ffff:10.0.0.1")) == "private (it carries 10.0.0.1)"
    )
