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

from esl_build.lesson.model import RichText, Span

_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_BACKTICK_RUNS = re.compile(r"`+")
_SPECIAL = re.compile(r"[\\`*~\[!]")


@dataclass(slots=True)
class _Delim:
    kind: str  # "**", "*" or "~~"
    can_open: bool
    can_close: bool
    matched: str = ""  # "", "open" or "close"


# A token is a str (literal text), a _Delim, or a tuple:
# ("code", text) | ("link", tokens, url).
_Token = object


def parse_inline(text: str) -> RichText:
    """Parse one line (or a few joined lines) of inline Markdown into spans."""
    if not text:
        return ()
    if _SPECIAL.search(text) is None:
        return (Span(text),)
    tokens = _tokenize(text, allow_links=True)
    _match(tokens)
    spans: list[Span] = []
    _emit(tokens, spans, bold=0, italic=0, strike=0, link=None)
    return _merge(spans)


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

    def flush() -> None:
        if buffer:
            tokens.append("".join(buffer))
            buffer.clear()

    while i < n:
        special = _SPECIAL.search(text, i)
        if special is None:
            buffer.append(text[i:])
            break
        if special.start() > i:
            buffer.append(text[i:special.start()])
            i = special.start()
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in _PUNCTUATION:
            buffer.append(text[i + 1])
            i += 2
            continue
        if char == "`":
            run_end = i
            while run_end < n and text[run_end] == "`":
                run_end += 1
            length = run_end - i
            starts = scanner.backtick_runs(length)
            k = bisect.bisect_right(starts, i)
            if k < len(starts):
                close = starts[k]
                content = text[run_end:close]
                if len(content) > 2 and content[0] == " " and content[-1] == " ":
                    content = content[1:-1]
                flush()
                tokens.append(("code", content))
                i = close + length
            else:
                buffer.append(text[i:run_end])
                i = run_end
            continue
        if allow_links and (char == "[" or (char == "!" and text.startswith("[", i + 1))):
            link = _link_at(scanner, i + (char == "!"))
            if link is not None:
                label, url, end = link
                flush()
                if char == "!":
                    tokens.append(("link", [label or "Image"], url))
                else:
                    inner = _tokenize(label, allow_links=False)
                    _match(inner)
                    tokens.append(("link", inner, url))
                i = end
                continue
        if char in "*~":
            run_end = i
            while run_end < n and text[run_end] == char:
                run_end += 1
            run = run_end - i
            if char == "~" and run != 2:
                buffer.append(text[i:run_end])
                i = run_end
                continue
            before = text[i - 1] if i > 0 else " "
            after = text[run_end] if run_end < n else " "
            flush()
            pieces = ["~~"] if char == "~" else ["**"] * (run // 2) + ["*"] * (run % 2)
            if after.isspace() or after in _PUNCTUATION:
                pieces.reverse()  # a closing run closes the inner (single) marker first
            for piece in pieces:
                can_open = not after.isspace() and scanner.last(piece) >= run_end
                if piece == "*":
                    can_open = can_open and not before.isalnum()
                tokens.append(_Delim(piece, can_open, not before.isspace()))
            i = run_end
            continue
        buffer.append(char)
        i += 1
    flush()
    return tokens


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


def _emit(tokens: list[_Token], out: list[Span], *, bold: int, italic: int, strike: int,
          link: str | None) -> None:
    for token in tokens:
        if isinstance(token, str):
            out.append(Span(token, bold > 0, italic > 0, strike > 0, False, link))
        elif isinstance(token, _Delim):
            if not token.matched:
                out.append(Span(token.kind, bold > 0, italic > 0, strike > 0, False, link))
                continue
            step = 1 if token.matched == "open" else -1
            if token.kind == "**":
                bold += step
            elif token.kind == "*":
                italic += step
            else:
                strike += step
        elif token[0] == "code":
            out.append(Span(token[1], bold > 0, italic > 0, strike > 0, True, link))
        else:
            _emit(token[1], out, bold=bold, italic=italic, strike=strike, link=token[2])


def _merge(spans: list[Span]) -> RichText:
    """Join neighbours with the same annotations (texts joined once, not pairwise)."""
    groups: list[tuple[Span, list[str]]] = []
    for span in spans:
        if not span.text:
            continue
        if groups:
            first = groups[-1][0]
            if (first.bold, first.italic, first.strike, first.code, first.link) == (
                    span.bold, span.italic, span.strike, span.code, span.link):
                groups[-1][1].append(span.text)
                continue
        groups.append((span, [span.text]))
    return tuple(span if len(texts) == 1 else
                 Span("".join(texts), span.bold, span.italic, span.strike, span.code, span.link)
                 for span, texts in groups)
