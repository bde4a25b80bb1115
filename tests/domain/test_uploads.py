"""Evidence upload checks without the server: type from the bytes, names made safe."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.uploads import (
    EVIDENCE_TYPES,
    UploadRefused,
    canonical_type,
    clean_filename,
    content_disposition,
    detect_evidence_type,
)

# The start of a 64-bit ELF executable: what a `setup.exe` dressed as a screenshot carries.
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 40


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG, chunk CRCs and all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 32 + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 16 + b";"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 24
MP4_MP41 = b"\x00\x00\x00\x18ftypmp41" + b"\x00" * 24  # a brand puremagic does not list
MOV = b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 24
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (PNG, "image/png", "image/png"),
        (JPEG, "image/jpeg", "image/jpeg"),
        (JPEG, "image/jpg", "image/jpeg"),
        (JPEG, "IMAGE/PJPEG; q=1", "image/jpeg"),
        (GIF, "image/gif", "image/gif"),
        (WEBP, "image/webp", "image/webp"),
        (MP4, "video/mp4", "video/mp4"),
        (MP4_MP41, "video/mp4", "video/mp4"),
        (MOV, "video/quicktime", "video/quicktime"),
        (PDF, "application/pdf", "application/pdf"),
        (PDF, "application/x-pdf", "application/pdf"),
        ("notes ✓\r\n".encode(), "text/plain; charset=utf-8", "text/plain"),
        (b"a,b\n1,2\n", "text/csv", "text/csv"),
        (b"a,b\n1,2\n", "application/csv", "text/csv"),
        (b"[1, 2]", "application/json", "application/json"),
        (b"", "text/plain", "text/plain"),
    ],
)
def test_accepted_when_the_bytes_are_the_declared_type(data, declared, expected):
    assert detect_evidence_type(data, declared) == expected
    assert expected in EVIDENCE_TYPES


@pytest.mark.parametrize(
    ("data", "declared", "detail"),
    [
        (ELF, "image/png", "declared image/png but its content is not recognisable as image/png"),
        (EXE, "image/png", "declared image/png but its content is not recognisable as image/png"),
        (PNG, "application/pdf", "declared application/pdf but its content is image/png"),
        (PDF, "image/png", "declared image/png but its content is application/pdf"),
        (WAV, "image/webp", "declared image/webp but its content is"),  # a bare RIFF header
        (MOV, "video/mp4", "declared video/mp4 but its content is video/quicktime"),
        (b"just words", "image/jpeg", "content is not recognisable as image/jpeg"),
        (b"", "image/png", "content is not recognisable as image/png"),
        (ELF, "text/plain", "declared text/plain but is not UTF-8 text"),
        (b"a\x00b", "text/csv", "is not UTF-8 text without NUL bytes"),
        (b"caf\xe9", "application/json", "is not UTF-8 text"),  # Latin-1, not UTF-8
        (PNG, "application/x-msdownload", "application/x-msdownload is not accepted; allowed:"),
        (PNG, "", "a file without a type is not accepted"),
        (PNG, None, "a file without a type is not accepted"),
        (b"<html><script>", "text/html", "text/html is not accepted"),
    ],
)
def test_refused_with_one_sentence(data, declared, detail):
    with pytest.raises(UploadRefused) as refused:
        detect_evidence_type(data, declared)
    assert detail in str(refused.value) and "\n" not in str(refused.value)


def test_canonical_type():
    assert canonical_type(" Image/JPG ; charset=x") == "image/jpeg"
    assert canonical_type("text/json") == "application/json"
    assert canonical_type(None) == ""


@pytest.mark.parametrize(
    ("name", "clean", "ascii_name", "encoded"),
    [
        ("post.png", "post.png", "post.png", "post.png"),
        ('../../evil"\r\nX: y.png', "evil_X_ y.png", "evil_X_ y.png", "evil_X_%20y.png"),
        ("C:\\Users\\me\\résumé.pdf", "résumé.pdf", "resume.pdf", "r%C3%A9sum%C3%A9.pdf"),
        ("日本.png", "日本.png", "__.png", "%E6%97%A5%E6%9C%AC.png"),
        ("report\u202egnp.exe", "reportgnp.exe", "reportgnp.exe", "reportgnp.exe"),
        ("a%0D%0Ab.png", "a%0D%0Ab.png", "a_0D_0Ab.png", "a%250D%250Ab.png"),
        ("..", "evidence", "evidence", "evidence"),
        ("/etc/", "evidence", "evidence", "evidence"),
        ("", "evidence", "evidence", "evidence"),
        (None, "evidence", "evidence", "evidence"),
        (" .bashrc ", "bashrc", "bashrc", "bashrc"),
    ],
)
def test_file_names_are_made_safe(name, clean, ascii_name, encoded):
    assert clean_filename(name) == clean
    assert content_disposition(name) == (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"
    )


def test_long_names_keep_their_extension():
    assert clean_filename("x" * 300 + ".png") == "x" * 251 + ".png"
    assert len(clean_filename("y" * 300)) == 255


@given(st.text(max_size=400))
def test_no_name_can_break_out_of_the_header(name):
    clean = clean_filename(name)
    assert 0 < len(clean) <= 255 and clean == clean_filename(clean)
    assert not any(c in clean for c in '/\\"\r\n\x00') and not clean.startswith(".")
    header = content_disposition(name)
    assert header.isascii() and header.isprintable()
    ascii_part, sep, extended = header.partition("; filename*=UTF-8''")
    assert sep and ascii_part.startswith('attachment; filename="') and ascii_part.endswith('"')
    inner = ascii_part.removeprefix('attachment; filename="')[:-1]
    assert inner and '"' not in inner and "\\" not in inner and ";" not in inner
    assert all(c.isalnum() or c in "%._-~" for c in extended)
