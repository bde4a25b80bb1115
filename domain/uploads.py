"""Evidence uploads: the type comes from the bytes, the name is made safe to show and send.

Pure functions (no I/O): the API calls them on an upload it has read into memory.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

import puremagic

# What evidence files may be: screenshots, recordings, documents, exports.
EVIDENCE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "video/mp4",
        "video/quicktime",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/json",
    }
)
# Text has no magic number: these are checked as UTF-8 without NUL bytes instead.
TEXT_TYPES = frozenset({"text/plain", "text/csv", "application/json"})
# Other names clients (and puremagic) give the same types.
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "application/x-pdf": "application/pdf",
    "video/x-quicktime": "video/quicktime",
    "text/x-csv": "text/csv",
    "application/csv": "text/csv",
    "text/json": "application/json",
}
FILENAME_MAX = 255


class UploadRefused(ValueError):
    """The bytes are not an accepted evidence type, or not the type the client declared."""


def canonical_type(content_type: str | None) -> str:
    """`Image/JPG; q=1` → `image/jpeg`: parameters dropped, lower case, aliases resolved."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return ALIASES.get(kind, kind)


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def sniff(data: bytes) -> set[str]:
    """The types puremagic ranks highest for these bytes (empty when it knows none).

    Two gaps in puremagic's table are closed here: it names a bare RIFF header (also WAV,
    AVI, ...) as WebP, so WebP must also say `WEBP` at offset 8; and it knows only some MP4
    brands, so an ISO media file (an `ftyp` box first) it cannot place is MP4, or QuickTime
    for the `qt  ` brand.
    """
    try:
        matches = puremagic.magic_string(data)
    except (puremagic.PureError, ValueError):  # unknown bytes; empty input
        matches = []
    best = max((m.confidence for m in matches), default=0)
    found = {canonical_type(m.mime_type) for m in matches if m.confidence == best}
    found.discard("")
    if "image/webp" in found and data[8:12] != b"WEBP":
        found.discard("image/webp")
    if not found and data[4:8] == b"ftyp":
        found = {"video/quicktime" if data[8:12] == b"qt  " else "video/mp4"}
    return found


def detect_evidence_type(data: bytes, declared: str | None) -> str:
    """The canonical type of an evidence file, when its bytes are what the client declared.

    Raises UploadRefused (one sentence, for a 415) when the declared type is not on the
    allow-list, the bytes are of another type, or binary bytes cannot be identified.
    """
    kind = canonical_type(declared)
    if kind not in EVIDENCE_TYPES:
        raise UploadRefused(
            f"{kind or 'a file without a type'} is not accepted; allowed: "
            + ", ".join(sorted(EVIDENCE_TYPES))
        )
    if kind in TEXT_TYPES:
        if _is_text(data):
            return kind
        raise UploadRefused(f"the file was declared {kind} but is not UTF-8 text without NUL bytes")
    found = sniff(data)
    if kind in found:
        return kind
    if not found:
        raise UploadRefused(
            f"the file was declared {kind} but its content is not recognisable as {kind}"
        )
    actual = sorted(found & EVIDENCE_TYPES) or sorted(found)
    raise UploadRefused(f"the file was declared {kind} but its content is {actual[0]}")


_UNSAFE = re.compile(r'["*:<>?|;]')
_NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9 ._()+\-]")


def clean_filename(name: str | None) -> str:
    """A client's file name reduced to something safe to store, show and send back.

    Directory parts go (both separators); control and format characters (CR/LF, NUL,
    bidi overrides) go; quotes and characters Windows forbids become `_`; leading and
    trailing dots and spaces go; at most 255 characters, the extension kept; `evidence` when
    nothing is left.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > FILENAME_MAX:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext if stem and len(ext) <= 16 else ""
        name = name[: FILENAME_MAX - len(ext)].rstrip(" .") + ext
    return name or "evidence"


def content_disposition(name: str | None) -> str:
    """`attachment` with an ASCII `filename` and the exact name as RFC 5987 `filename*`."""
    name = clean_filename(name)
    # `résumé` → `resume` (accents dropped), `日本` → `__`, anything unsafe → `_`.
    letters = (c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    ascii_name = _NOT_ASCII_SAFE.sub("_", "".join(letters)).strip(" .") or "evidence"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
