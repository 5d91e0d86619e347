"""The envelope: normalise the text, unwrap the optional outer fence, split off the frontmatter.

Every step keeps each line's number in the *original* file: normalisation never adds or removes
a line break (CRLF and a lone CR both count as one line break, as editors show them), and the
fence and the frontmatter are cut off as whole lines, so ``Line.no`` stays what the teacher sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from esl_build.errors import Problem

# Characters that are invisible or look like a space. ZWJ (U+200D) is kept: emoji such as 👨‍🏫
# are built with it.
_REPLACE = (("\ufeff", ""), ("\u200b", ""), ("\u2060", ""), ("\u00a0", " "), ("\u202f", " "))
_FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*([^`\s]*)[ \t]*$")
_COMMENT_OPEN = "<!--"
_COMMENT_CLOSE = "-->"

Line = tuple[int, str]  # (1-based line number in the original file, text)


@dataclass(slots=True)
class Envelope:
    """The lesson split into its parts, each line still carrying its original number."""

    frontmatter: list[Line] | None   # None: no (closed) frontmatter block
    frontmatter_line: int            # the opening ``---`` (or the first line when absent)
    body: list[Line]
    problems: list[Problem] = field(default_factory=list)


def normalise(text: str) -> str:
    """BOM, zero-width spaces and NBSP out; CRLF and CR to LF. The line count is unchanged."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for char, replacement in _REPLACE:
        if char in text:  # str.translate is slow; most files have none of these
            text = text.replace(char, replacement)
    return text


def split_envelope(text: str, path: str) -> Envelope:
    """Normalise ``text`` and cut it into frontmatter lines and body lines."""
    lines = list(enumerate(normalise(text).split("\n"), start=1))
    problems: list[Problem] = []
    content = _unwrap_fence(lines, path, problems)
    frontmatter, fm_line, body = _split_frontmatter(content, path, problems)
    body = _drop_comments(body, path, problems)
    return Envelope(frontmatter, fm_line, body, problems)


def _unwrap_fence(lines: list[Line], path: str, problems: list[Problem]) -> list[Line]:
    """The lines inside the outer ```` ```markdown ```` fence, or all lines if there is none.

    The closing fence is the *last* fence line of the file, so code blocks inside the lesson
    do not end it early (the predecessor stopped at the first inner fence).
    """
    first = next((k for k, (_, text) in enumerate(lines) if text.strip()), None)
    if first is None:
        return []
    opener = _FENCE.match(lines[first][1])
    if opener is None:
        return lines
    marker = opener.group(1)
    for k in range(len(lines) - 1, first, -1):
        text = lines[k][1].strip()
        if text.startswith(marker[0] * len(marker)) and not text.strip(marker[0]):
            trailing = next((no for no, rest in lines[k + 1:] if rest.strip()), None)
            if trailing is not None:
                problems.append(Problem(
                    path, trailing, "warning",
                    f"text after the closing {marker} fence (line {lines[k][0]}) is ignored; "
                    "move it inside the fence or delete it"))
            return lines[first + 1:k]
    problems.append(Problem(
        path, lines[first][0], "error",
        f"the opening {marker} fence is never closed; add a line with {marker} at the end "
        "of the lesson"))
    return lines[first + 1:]


def _split_frontmatter(lines: list[Line], path: str, problems: list[Problem]
                       ) -> tuple[list[Line] | None, int, list[Line]]:
    first = next((k for k, (_, text) in enumerate(lines) if text.strip()), None)
    if first is None:
        where = lines[0][0] if lines else 1
        problems.append(Problem(path, where, "error",
                                "the lesson is empty; start it with a --- frontmatter block"))
        return None, where, []
    opener_no, opener = lines[first]
    if opener.rstrip() != "---":
        problems.append(Problem(
            path, opener_no, "error",
            "the lesson has no frontmatter; start it with a --- block holding title, student, "
            "level, topic and input_type, closed by another ---"))
        return None, opener_no, lines[first:]
    for k in range(first + 1, len(lines)):
        if lines[k][1].rstrip() in ("---", "..."):
            return lines[first + 1:k], opener_no, lines[k + 1:]
    problems.append(Problem(
        path, opener_no, "error",
        "the frontmatter opened here is never closed; add a line with --- after its last key"))
    return None, opener_no, lines[first + 1:]


def _drop_comments(lines: list[Line], path: str, problems: list[Problem]) -> list[Line]:
    """Blank out ``<!-- … -->`` (also across lines): comments are notes, never shown."""
    if not any(_COMMENT_OPEN in text for _, text in lines):
        return lines
    out: list[Line] = []
    open_at: int | None = None  # index into out of the line holding an unclosed "<!--"
    saved: list[Line] = []      # the original lines since that opener, restored if unclosed
    for no, text in lines:
        if open_at is not None:
            saved.append((no, text))
            end = text.find(_COMMENT_CLOSE)
            if end == -1:
                out.append((no, ""))
                continue
            text = text[end + len(_COMMENT_CLOSE):]
            open_at, saved = None, []
        kept: list[str] = []
        while True:
            start = text.find(_COMMENT_OPEN)
            if start == -1:
                kept.append(text)
                break
            kept.append(text[:start])
            end = text.find(_COMMENT_CLOSE, start + len(_COMMENT_OPEN))
            if end == -1:
                open_at, saved = len(out), [(no, text[start:])]
                break
            text = text[end + len(_COMMENT_CLOSE):]
        joined = "".join(kept)
        out.append((no, joined if joined.strip() else ""))
    if open_at is not None:
        no = saved[0][0]
        problems.append(Problem(path, no, "error",
                                "this HTML comment (<!--) is never closed; add --> where it ends"))
        # Show the text after all: restore the lines the comment would have hidden.
        head_no, head = out[open_at]
        out[open_at] = (head_no, head + saved[0][1])
        out[open_at + 1:] = saved[1:]
    return out
