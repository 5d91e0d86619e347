"""The study text as speech: segments with a speaker, clean text and a source line.

One speaker-line grammar (``split_speaker``) serves the validator and the TTS stage alike:
``[Name]: text``, ``Name: text``, ``**Name**: text`` and ``**Name:** text``. A name is 1–32
characters (letters of any script, digits, spaces, ``_ . -``) starting with a letter, and the colon
must be followed by whitespace or the end of the line, so ``At 10:30 we met`` has no speaker.
"""

from __future__ import annotations

import re
from typing import Literal

from esl_build.errors import Problem
from esl_build.lesson.blocks import StudyTextSource
from esl_build.lesson.inline import strip_inline
from esl_build.lesson.model import Frontmatter, Segment, StudyText

_NAME = r"[^\W\d_][\w .\-]{0,31}"
_SPEAKER = re.compile(
    rf"(?:\[(?P<a>{_NAME})\][ \t]*:|\*\*(?P<b>{_NAME})\*\*[ \t]*:|\*\*(?P<c>{_NAME}):\*\*"
    rf"|(?P<d>{_NAME}):)(?=\s|$)")
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d{1,9}[.)]|#{1,6}|>)[ \t]+")  # also headings, quotes
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_SPACE = re.compile(r"\s+")
SHORT_PARAGRAPHS, SHORT_LINES = 3, 10


def split_speaker(line: str) -> tuple[str | None, str]:
    """``"**Emma:** hi"`` → ``("Emma", "hi")``; a line without a speaker → ``(None, line)``."""
    text = line.strip()
    match = _SPEAKER.match(text)
    if match is None:
        return None, text
    name = next(group for group in match.group("a", "b", "c", "d") if group is not None)
    return name.strip(), text[match.end():].strip()


def speech_text(markdown: str) -> str:
    """What is spoken: inline Markdown and HTML tags removed, whitespace collapsed.

    Unlike the predecessor, only real markup goes: ``snake_case``, ``5 > 3`` and ``[laughs]``
    are read as written.
    """
    text = strip_inline(markdown)
    if "<" in text:
        text = _HTML_TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def build_study_text(source: StudyTextSource, frontmatter: Frontmatter, path: str
                     ) -> tuple[StudyText, list[Problem]]:
    """Segment a study text and check its speakers against ``speaker_labels``."""
    problems: list[Problem] = []
    labels = {label.casefold(): label for label in frontmatter.speaker_labels}
    narrator = labels.get("narrator")
    # With labels other than a lone Narrator, every line is a speaker line or a continuation.
    dialogue_rule = bool(labels) and set(labels) != {"narrator"}
    allowed = ", ".join(frontmatter.speaker_labels)
    lines = [(no, text.strip()) for no, text in source.lines
             if text.strip() and not text.strip().startswith(":::")]
    if lines and source.label and lines[0][1].casefold() == source.label.casefold():
        lines = lines[1:]  # a first line repeating the label is a title, not speech
    segments: list[Segment] = []
    current: str | None = None
    reported_orphan = False
    for no, text in lines:
        body = _LIST_MARKER.sub("", text, count=1)
        name, rest = split_speaker(body)
        speaker: str | None = None
        if name is not None and labels:
            speaker = labels.get(name.casefold())
            if speaker is None and dialogue_rule:
                problems.append(Problem(path, no, "error", f'unknown speaker "{name}" in the '
                                        f"study text; add it to speaker_labels or use one of: "
                                        f"{allowed}"))
                speaker = name
            elif speaker is None:
                name, rest = None, body  # narrator-only lessons: "Note: …" is just text
        elif name is not None:
            speaker = name
        if name is None:
            speaker = current if current is not None else narrator
            if speaker is None and dialogue_rule and not reported_orphan:
                reported_orphan = True
                problems.append(Problem(
                    path, no, "error",
                    "this study-text line comes before the first speaker; start it with "
                    f'"Name: " using one of: {allowed} (or add Narrator to speaker_labels)'))
        current = speaker
        spoken = speech_text(rest)
        if spoken:
            segments.append(Segment(speaker, spoken, rest, no))
    distinct = {segment.speaker for segment in segments if segment.speaker is not None}
    kind: Literal["dialogue", "monologue"] = "dialogue" if len(distinct) >= 2 else "monologue"
    study = StudyText(source.line, source.label, kind, tuple(segments))
    if not segments:
        problems.append(Problem(path, source.line, "error", "the study text is empty; write the "
                                "text to be read aloud between :::study-text and :::"))
    elif kind == "monologue" and _paragraphs(source) < SHORT_PARAGRAPHS and \
            len(lines) < SHORT_LINES:
        problems.append(Problem(path, source.line, "warning", "the study text looks short; aim "
                                "for 3–5 paragraphs or 10–15 lines"))
    return study, problems


def _paragraphs(source: StudyTextSource) -> int:
    count, in_paragraph = 0, False
    for _, text in source.lines:
        if text.strip():
            count += not in_paragraph
            in_paragraph = True
        else:
            in_paragraph = False
    return count
