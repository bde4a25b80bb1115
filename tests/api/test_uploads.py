"""Hostile uploads (issue #9 item 8): an evidence file's type comes from its bytes, and a
download can neither be rendered by the browser nor smuggle a header or a path."""

from __future__ import annotations

import pytest

from tests.api.test_campaigns import create_and_fund, ok
from tests.api.test_disputes import file
from tests.api.test_parties import assert_problem
from tests.domain.test_uploads import ELF, JPEG, tiny_png


@pytest.fixture
async def dispute(api, make_party):
    brand = await make_party("brand")
    creator = await make_party("creator", stripe_account="acct_creator1")
    cid = (await create_and_fund(brand, creator))["id"]
    return brand, creator, (await file(brand, cid))["id"]


async def evidence_ids(client, did: str) -> list[str]:
    return [e["id"] for e in (await ok(await client.get(f"/v1/disputes/{did}")))["evidence"]]


async def test_an_executable_declared_png_is_refused_and_nothing_is_stored(api, dispute, settings):
    brand, creator, did = dispute
    before = await evidence_ids(brand.client, did)
    body = assert_problem(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            files={"file": ("setup.exe", ELF, "image/png")},
            data={"description": "screenshot"},
        ),
        415,
        "unsupported_media_type",
    )
    assert body["detail"] == (
        "the file was declared image/png but its content is not recognisable as image/png"
    )
    assert await evidence_ids(brand.client, did) == before
    assert not [p for p in (settings.data_dir / "evidence").rglob("*") if p.is_file()]


async def test_a_real_png_is_kept_and_comes_back_as_an_unsniffable_attachment(api, dispute):
    brand, creator, did = dispute
    png = tiny_png()
    uploaded = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence", files={"file": ("post.png", png, "image/png")}
        ),
        201,
    )
    assert uploaded["content_type"] == "image/png" and uploaded["filename"] == "post.png"
    download = await brand.client.get(f"/v1/disputes/{did}/evidence/{uploaded['id']}")
    assert download.status_code == 200 and download.content == png
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"post.png\"; filename*=UTF-8''post.png"
    )


async def test_png_bytes_declared_pdf_are_refused(api, dispute):
    brand, creator, did = dispute
    body = assert_problem(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            files={"file": ("contract.pdf", tiny_png(), "application/pdf")},
        ),
        415,
        "unsupported_media_type",
    )
    assert body["detail"] == "the file was declared application/pdf but its content is image/png"
    assert await evidence_ids(brand.client, did) == []


async def test_text_is_utf8_without_nul_and_aliases_are_one_type(api, dispute):
    brand, creator, did = dispute
    notes = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            files={
                "file": ("notes.txt", "posted on time ✓\n".encode(), "text/plain; charset=utf-8")
            },
        ),
        201,
    )
    assert notes["content_type"] == "text/plain"
    photo = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence", files={"file": ("p.jpg", JPEG, "image/jpg")}
        ),
        201,
    )
    assert photo["content_type"] == "image/jpeg"  # stored under its canonical name
    assert_problem(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            files={"file": ("setup.txt", ELF, "text/plain")},
        ),
        415,
        "unsupported_media_type",
    )
    assert await evidence_ids(brand.client, did) == [notes["id"], photo["id"]]


def _header_safe(disposition: str) -> None:
    ascii_part, _, extended = disposition.partition("; filename*=UTF-8''")
    assert ascii_part.startswith('attachment; filename="') and ascii_part.endswith('"')
    name = ascii_part.removeprefix('attachment; filename="')[:-1]
    assert name.isascii() and not any(c in name for c in '"\\/\r\n;') and ".." not in name
    assert all(c.isalnum() or c in "%._-" for c in extended), extended


async def test_hostile_file_names_come_back_sanitised(api, dispute):
    brand, creator, did = dispute
    # Through httpx (which percent-escapes the quote and CR/LF, as browsers do) ...
    polite = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            files={"file": ('../../evil"\r\nX: y.png', tiny_png(), "image/png")},
        ),
        201,
    )
    # ... and raw, with a backslash path, an escaped quote, a bidi override and non-ASCII.
    boundary = "b0undary"
    raw_name = '..\\\\..\\\\évil\\"\u202e;x.png'
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{raw_name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + tiny_png()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    raw = await ok(
        await creator.client.post(
            f"/v1/disputes/{did}/evidence",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        ),
        201,
    )
    for item in (polite, raw):
        name = item["filename"]
        assert not any(c in name for c in '"/\\\r\n\u202e') and not name.startswith("."), name
        download = await brand.client.get(f"/v1/disputes/{did}/evidence/{item['id']}")
        assert download.status_code == 200 and "x" not in download.headers
        assert download.headers["x-content-type-options"] == "nosniff"
        _header_safe(download.headers["content-disposition"])
    assert polite["filename"].endswith("X_ y.png")
    assert raw["filename"] == "évil__x.png"
    download = await brand.client.get(f"/v1/disputes/{did}/evidence/{raw['id']}")
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"evil__x.png\"; filename*=UTF-8''%C3%A9vil__x.png"
    )
