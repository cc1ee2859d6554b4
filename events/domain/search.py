"""Raw event search (pure): `where` conditions on the detail and free text.

A condition is `path=value`: the path is dot-separated object keys into the detail (it never
indexes into arrays), the value JSON (`orderId=1234` a number, `name="Zoë"` a string), or a plain
string when it is not JSON (`status=FAILED`). It matches when the detail holds that exact JSON
value there: a number equals a number of the same value, never a boolean or a string.

Free text matches, case-insensitively in any script, the envelope id or any key or value of
the detail as JSON with its characters unescaped ("zoë", "😀", "東京").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_WHERE = 10
MAX_PATH = 20  # keys deep
MISSING = object()


@dataclass(frozen=True)
class Where:
    path: tuple[str, ...]
    value: Any

    def nested(self) -> dict[str, Any]:
        """The condition as a nested object, `{"a": {"b": value}}`: what JSON containment takes."""
        found: Any = self.value
        for key in reversed(self.path):
            found = {key: found}
        return found


def parse_where(text: str) -> Where:
    """ValueError (with a message for a person) unless `text` is `path=value`.

    The path starts inside the detail; a leading `detail.` is allowed and dropped, so
    `detail.orderId=1234` and `orderId=1234` are the same (a key named "detail" inside the detail
    is `detail.detail`)."""
    path, equals, value = text.partition("=")
    keys = tuple(path.split("."))
    if len(keys) > 1 and keys[0] == "detail":
        keys = keys[1:]
    if not equals or not path or "" in keys:
        raise ValueError("must be path=value, the path dot-separated keys, e.g. customer.name=Zoë")
    if len(keys) > MAX_PATH:
        raise ValueError(f"paths are at most {MAX_PATH} keys deep")
    where = Where(keys, _json_or_text(value))
    if not _storable(where.nested()):
        raise ValueError("must not hold a NUL or a lone surrogate (no stored detail can)")
    return where


def _storable(value: Any) -> bool:
    """What a database's JSON could hold: PostgreSQL refuses \\u0000 and lone surrogates."""
    try:
        text = json.dumps(value, ensure_ascii=False)
        text.encode()
    except (UnicodeEncodeError, ValueError, RecursionError):
        return False
    return "\x00" not in text and "\\u0000" not in text


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse)
    except (ValueError, RecursionError):  # NaN and Infinity are no JSON: plain text
        return text


def _refuse(name: str) -> Any:
    raise ValueError(name)


def where_matches(detail: Any, where: Where) -> bool:
    found = detail
    for key in where.path:
        if not isinstance(found, dict) or key not in found:
            return False
        found = found[key]
    return same_json(found, where.value)


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: bools are not numbers (Python says True == 1), 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def text_matches(event_id: str, detail: Any, text: str) -> bool:
    """`text` already folded with `fold`."""
    if not text:
        return True
    return text in fold(event_id) or text in fold(json.dumps(detail, ensure_ascii=False))


def fold(text: str) -> str:
    return text.casefold()


def search_text(event_id: str, detail: Any) -> str:
    """What `text_matches` looks in, folded, as one string a database can hold and index: every
    text it matches is in here (a match across the line break is a false positive, which the
    exact check drops). A lone surrogate (no database stores one) becomes U+FFFD."""
    text = fold(event_id) + "\n" + fold(json.dumps(detail, ensure_ascii=False))
    return _UNSTORABLE.sub("\ufffd", text)


def storable_text(text: str) -> bool:
    """Whether a search text could be in a stored `search_text` (no NUL, no lone surrogate)."""
    return not _UNSTORABLE.search(text)


def indexed_text(text: str) -> bool:
    """Whether a trigram index can narrow a search for `text` (folded): it needs a run of 3
    letters or digits; ASCII ones, as every database locale's pg_trgm sees the same words
    in them. Other text (an emoji, two CJK characters) is searched by a bounded scan."""
    return bool(_TRIGRAM.search(text))


@dataclass(frozen=True)
class Word:
    """A token a whole-word index can look up for a search: every text that holds the search
    holds a token that starts with `text` (`prefix`) or is `text`."""

    text: str
    prefix: bool


WORD_MIN = 3  # shorter tokens are too common to narrow much: the trigram index instead
WORD_MAX = 100  # the PostgreSQL index splits longer runs (events.stores.orm.text)


def words(text: str) -> tuple[Word, ...]:
    """The tokens of `text` (folded) that every text holding it must hold, for a whole-word index
    whose tokens are the runs of ASCII letters and digits (a-z, 0-9).

    `text` is a substring search, so a run with nothing before it in `text` ("ord" of
    "ord-333333") may be the tail of a longer token ("record-333333"): it is no token of its
    own. A run after an ASCII non-alphanumeric character starts a token in any text that holds
    `text` (a prefix: "333333" may go on, "333333x"); one with such a character after it too is
    a whole token. A non-ASCII character next to a run counts as neither: SQLite's `ascii`
    tokenizer reads it as part of the token, PostgreSQL's expression as a separator. Runs
    shorter than WORD_MIN are left out; longer than WORD_MAX, their first WORD_MAX characters
    are a prefix. Empty: no token to look up (the trigram index, as before)."""
    found = []
    for run in _WORD.finditer(text):
        start, end = run.span()
        if start == 0 or not _separator(text[start - 1]):
            continue
        token = run.group()[:WORD_MAX]
        whole = end < len(text) and _separator(text[end]) and len(run.group()) <= WORD_MAX
        if len(token) >= WORD_MIN:
            found.append(Word(token, prefix=not whole))
    return tuple(found)


def _separator(character: str) -> bool:
    return character < "\x80" and not character.isalnum()


_WORD = re.compile(r"[a-z0-9]+", re.ASCII)
_TRIGRAM = re.compile(r"[a-z0-9]{3}", re.ASCII)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
