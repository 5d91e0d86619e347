"""Text → ``Lesson`` and every ``Problem``: the one entry point that reads lesson Markdown."""

from __future__ import annotations

import pathlib

from esl_build.errors import Problem
from esl_build.lesson.blocks import parse_blocks
from esl_build.lesson.envelope import split_envelope
from esl_build.lesson.frontmatter import parse_frontmatter
from esl_build.lesson.model import Lesson, StudyText
from esl_build.lesson.speech import build_study_text
from esl_build.lesson.validate import check_structure


def parse_lesson(text: str, *, path: str, lesson_id: str, strict: bool = False
                 ) -> tuple[Lesson | None, list[Problem]]:
    """Parse and validate one lesson.

    Returns the lesson (whenever the text could be structured at all, even with errors) and
    every problem — errors and warnings — sorted by line. With ``strict`` the warnings are
    errors. Callers must not publish a lesson when any problem is an error.
    """
    envelope = split_envelope(text, path)
    problems = list(envelope.problems)
    frontmatter, fm_problems = parse_frontmatter(envelope.frontmatter, envelope.frontmatter_line,
                                                 path)
    problems += fm_problems
    document = parse_blocks(envelope.body, path)
    problems += document.problems
    study_text: StudyText | None = None
    if document.study_texts:
        study_text, speech_problems = build_study_text(document.study_texts[0], frontmatter, path)
        problems += speech_problems
        for extra in document.study_texts[1:]:
            problems.append(Problem(path, extra.line, "warning",
                                    "only the first :::study-text is read aloud; merge this one "
                                    "into it or make it a :::toggle-heading"))
    else:
        first = next((no for no, line in envelope.body if line.strip()), envelope.frontmatter_line)
        problems.append(Problem(path, first, "error",
                                'the lesson has no ":::study-text … :::" block; add one under '
                                '"3. Input Material" with the text to be read aloud'))
    problems += check_structure(document.blocks, path)
    problems = _finish(problems, strict)
    lesson = Lesson(id=lesson_id, path=path, frontmatter=frontmatter, blocks=document.blocks,
                    study_text=study_text,
                    warnings=tuple(p for p in problems if not p.is_error))
    return lesson, problems


def read_lesson(file: pathlib.Path, *, lesson_id: str, path: str | None = None,
                strict: bool = False) -> tuple[Lesson | None, list[Problem]]:
    """Read ``file`` (UTF-8) and parse it; ``path`` is the name shown in messages.

    An unreadable file or invalid UTF-8 is a problem with a line, not an exception; the lesson
    is then None.
    """
    shown = path if path is not None else str(file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        return None, [Problem(shown, 1, "error", f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Problem(shown, line, "error",
                              f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at "
                              f"column {column}); save it as UTF-8")]
    return parse_lesson(text, path=shown, lesson_id=lesson_id, strict=strict)


def _finish(problems: list[Problem], strict: bool) -> list[Problem]:
    """Strict mode, then duplicates out and line order."""
    if strict:
        problems = [Problem(p.path, p.line, "error", p.message) for p in problems]
    return sorted(set(problems), key=lambda p: (p.line, p.severity, p.message))
