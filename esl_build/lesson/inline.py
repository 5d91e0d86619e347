"""Inline Markdown → rich text (``Span``\\ s).

Supported: ``**bold**``, ``*italic*``, ``~~strike~~``, ```code```, ``[text](url)``
(formatting around and inside the link is kept), ``![alt](url)`` (a linked span showing the alt
text) and backslash escapes. ``_`` and ``__`` are never emphasis: ``____`` blanks stay as written.

The scanner is linear: delimiters are matched with a stack (an unmatched one stays literal, as
written), and every look-ahead uses positions computed once per string.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from esl_build.lesson.model import RichText, Span

_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_BACKTICK_RUNS = re.compile(r"`+")
_SIMPLE = re.compile(r"\*\*([^*`]+)\*\*|\*([^*`]+)\*|`([^`]+)`")
_SPECIAL = re.compile(r"\\.|`+|!?\[|\*+|~+", re.DOTALL)


@dataclass(slots=True)
class _Delim:
    kind: str  # "**", "*" or "~~"
    can_open: bool
    can_close: bool
    matched: str = ""  # "", "open" or "close"


# A token is a str (literal text), a _Delim, or a tuple:
# ("code", text) | ("link", tokens, url).
_Token = str | _Delim | tuple[Any, ...]


def parse_inline(text: str) -> RichText:
    """Parse one line (or a few joined lines) of inline Markdown into spans."""
    if not text:
        return ()
    if _SPECIAL.search(text) is None:
        return (Span(text),)
    fast = _simple(text)
    if fast is not None:
        return fast
    return _parse(text)


def _parse(text: str) -> RichText:
    """The general scanner (``parse_inline`` without its shortcuts)."""
    tokens = _tokenize(text, allow_links=True)
    _match(tokens)
    pieces: list[tuple[str, _Style]] = []
    _emit(tokens, pieces, bold=0, italic=0, strike=0, link=None)
    return _merge(pieces)


def _simple(text: str) -> RichText | None:
    """The common line — plain text with ``**bold**``, ``*italic*`` and ```code``` runs, not
    nested — read with one regex instead of the scanner; None whenever in doubt (the scanner
    decides). A property test checks that both agree.
    """
    if "[" in text or "~" in text or "\\" in text:
        return None
    spans: list[Span] = []
    i = 0
    for match in _SIMPLE.finditer(text):
        start, end = match.span()
        bold, italic, code = match.group(1, 2, 3)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if code is not None:
            if before == "`" or after == "`":
                return None
            if len(code) > 2 and code[0] == " " and code[-1] == " ":
                code = code[1:-1]
            span = Span(code, code=True)
        else:
            content = bold if bold is not None else italic
            if (content[0].isspace() or content[-1].isspace() or before == "*" or after == "*"
                    or (italic is not None and before.isalnum())):
                return None
            span = Span(content, bold=True) if bold is not None else Span(content, italic=True)
        if start > i:
            plain = text[i:start]
            if "*" in plain or "`" in plain:
                return None
            spans.append(Span(plain))
        spans.append(span)
        i = end
    if i < len(text):
        plain = text[i:]
        if "*" in plain or "`" in plain:
            return None
        spans.append(Span(plain))
    return tuple(spans)


def strip_inline(text: str) -> str:
    """The text a reader sees: inline markup removed, whitespace kept."""
    return "".join(span.text for span in parse_inline(text))


class _Scanner:
    """Positions computed once per string, so every look-ahead is O(log n) or O(1)."""

    def __init__(self, text: str):
        self.text = text
        self._last: dict[str, int] = {}
        self._runs: dict[int, list[int]] | None = None
        self._next: dict[str, int] = {}

    def last(self, kind: str) -> int:
        """Index of the last ``kind`` in the text (-1 if none)."""
        found = self._last.get(kind)
        if found is None:
            found = self._last[kind] = self.text.rfind(kind)
        return found

    def backtick_runs(self, length: int) -> list[int]:
        """Start indices of the runs of exactly ``length`` backticks."""
        if self._runs is None:
            self._runs = {}
            for match in _BACKTICK_RUNS.finditer(self.text):
                self._runs.setdefault(len(match.group()), []).append(match.start())
        return self._runs.get(length, [])

    def next_index(self, char: str, start: int) -> int:
        """Index of the next ``char`` at or after ``start`` (-1 if none), memoised."""
        # Queries come with a growing ``start``, so an answer stays valid until passed.
        cached = self._next.get(char)
        if cached is not None and (cached == -1 or cached >= start):
            return cached
        found = self.text.find(char, start)
        self._next[char] = found
        return found


def _tokenize(text: str, *, allow_links: bool) -> list[_Token]:
    scanner = _Scanner(text)
    tokens: list[_Token] = []
    buffer: list[str] = []
    i, n = 0, len(text)
    for special in _SPECIAL.finditer(text):
        start, end = special.span()
        if start < i:
            continue  # inside a code span or link already consumed
        if start > i:
            buffer.append(text[i:start])
        i = end
        token = special.group()
        first = token[0]
        if first == "\\":
            buffer.append(token[1] if token[1] in _PUNCTUATION else token)
        elif first == "`":
            length = end - start
            starts = scanner.backtick_runs(length)
            k = bisect.bisect_right(starts, start)
            if k < len(starts):
                close = starts[k]
                content = text[end:close]
                if len(content) > 2 and content[0] == " " and content[-1] == " ":
                    content = content[1:-1]
                _flush(buffer, tokens)
                tokens.append(("code", content))
                i = close + length
            else:
                buffer.append(token)
        elif first in "![":
            link = _link_at(scanner, end - 1) if allow_links else None
            if link is None:
                buffer.append(token)
                continue
            label, url, i = link
            _flush(buffer, tokens)
            if first == "!":
                tokens.append(("link", [label or "Image"], url))
            else:
                inner = _tokenize(label, allow_links=False)
                _match(inner)
                tokens.append(("link", inner, url))
        elif first == "~" and end - start != 2:
            buffer.append(token)
        else:
            before = text[start - 1] if start > 0 else " "
            after = text[end] if end < n else " "
            _flush(buffer, tokens)
            run = end - start
            pieces = ["~~"] if first == "~" else ["**"] * (run // 2) + ["*"] * (run % 2)
            if after.isspace() or after in _PUNCTUATION:
                pieces.reverse()  # a closing run closes the inner (single) marker first
            for piece in pieces:
                can_open = not after.isspace() and scanner.last(piece) >= end
                if piece == "*":
                    can_open = can_open and not before.isalnum()
                tokens.append(_Delim(piece, can_open, not before.isspace()))
    if i < n:
        buffer.append(text[i:])
    _flush(buffer, tokens)
    return tokens


def _flush(buffer: list[str], tokens: list[_Token]) -> None:
    if buffer:
        tokens.append("".join(buffer))
        buffer.clear()


def _link_at(scanner: _Scanner, i: int) -> tuple[str, str, int] | None:
    """``[label](url)`` starting at ``i`` → (label, url, end index), else None."""
    text = scanner.text
    close = scanner.next_index("]", i + 1)
    if close == -1 or not text.startswith("(", close + 1):
        return None
    end = scanner.next_index(")", close + 2)
    if end == -1:
        return None
    url = text[close + 2:end].strip()
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1]
    if not url or any(c.isspace() for c in url):
        return None
    return text[i + 1:close], url, end + 1


def _match(tokens: list[_Token]) -> None:
    """Pair openers with closers; anything left unpaired is shown literally."""
    stack: list[_Delim] = []
    for token in tokens:
        if not isinstance(token, _Delim):
            continue
        if token.can_close:
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth].kind == token.kind:
                    stack[depth].matched = "open"
                    token.matched = "close"
                    del stack[depth:]
                    break
            if token.matched:
                continue
        if token.can_open:
            stack.append(token)


_Style = tuple[bool, bool, bool, bool, str | None]  # bold, italic, strike, code, link


def _emit(tokens: list[_Token], out: list[tuple[str, _Style]], *, bold: int, italic: int,
          strike: int, link: str | None) -> None:
    """Tokens → (text, style) pairs; plain tuples, because building ``Span``\\ s is slow."""
    for token in tokens:
        if isinstance(token, str):
            out.append((token, (bold > 0, italic > 0, strike > 0, False, link)))
        elif isinstance(token, _Delim):
            if not token.matched:
                out.append((token.kind, (bold > 0, italic > 0, strike > 0, False, link)))
                continue
            step = 1 if token.matched == "open" else -1
            if token.kind == "**":
                bold += step
            elif token.kind == "*":
                italic += step
            else:
                strike += step
        elif token[0] == "code":
            out.append((token[1], (bold > 0, italic > 0, strike > 0, True, link)))
        else:
            _emit(token[1], out, bold=bold, italic=italic, strike=strike, link=token[2])


def _merge(pieces: list[tuple[str, _Style]]) -> RichText:
    """Join neighbours with the same style (texts joined once, not pairwise) into spans."""
    groups: list[tuple[_Style, list[str]]] = []
    for text, style in pieces:
        if not text:
            continue
        if groups and groups[-1][0] == style:
            groups[-1][1].append(text)
        else:
            groups.append((style, [text]))
    return tuple(Span(texts[0] if len(texts) == 1 else "".join(texts), *style)
                 for style, texts in groups)
