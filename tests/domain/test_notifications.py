"""The webhook signature and SMTP URLs (domain/notifications.py)."""

from __future__ import annotations

import pytest

from domain.notifications import SmtpServer, delivery_workflow_id, parse_smtp_url, sign


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    # Known answer: `printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test`.
    assert sign("whsec_test", 1_700_000_000, b"{}") == (
        "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
    )
    assert sign("whsec_test", 1_700_000_001, b"{}") != sign("whsec_test", 1_700_000_000, b"{}")


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://127.0.0.1:2525", SmtpServer(host="127.0.0.1", port=2525)),
        ("smtp://mail.example", SmtpServer(host="mail.example", port=25)),
        (
            "smtps://u%40x:p%3Aw@mail.example",
            SmtpServer("mail.example", 465, True, False, "u@x", "p:w"),
        ),
        ("smtp://mail.example:587?starttls=1", SmtpServer("mail.example", 587, starttls=True)),
    ],
)
def test_smtp_urls(url, server):
    assert parse_smtp_url(url) == server


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25"])
def test_bad_smtp_urls_are_refused(url):
    with pytest.raises(ValueError, match="PARLEY_SMTP_URL"):
        parse_smtp_url(url)


def test_one_delivery_workflow_per_event():
    assert delivery_workflow_id("dsp_1a2b:7") == "deliver-dsp_1a2b-7"
