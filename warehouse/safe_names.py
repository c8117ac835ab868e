"""Names from data made safe for the file system: a value in a file never becomes a path.

A source system's name comes from the export (a mapping, a column): it may hold `/`, `..`,
control characters or hundreds of characters. Its folder name is a bounded slug of it, with a
short hash of the full name when the slug differs, so two names never share a folder and no
name can point outside the folder it is joined to.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_SLUG_CHARS = 48
_UNSAFE = re.compile(r"[^\w-]+", re.UNICODE)


def folder_name(name: str) -> str:
    """A folder name for `name`: letters, digits, `_` and `-` only, at most 57 characters."""
    text = unicodedata.normalize("NFKC", str(name))
    slug = _UNSAFE.sub("_", text).strip("_-")[:MAX_SLUG_CHARS]
    if slug and slug == text:
        return slug
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug or 'source'}-{digest}"


def printable(text: str) -> str:
    """Text for a console line: control characters (a newline in a file name) escaped, so
    one name is always one line."""
    return "".join(
        ch
        if unicodedata.category(ch)[0] != "C" or ch == " "
        else ch.encode("unicode_escape").decode()
        for ch in str(text)
    )
