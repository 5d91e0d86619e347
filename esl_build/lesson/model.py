"""The lesson model: frozen dataclasses, parsed once from Markdown, never mutated.

Every node keeps the 1-based line of the *original* file it came from (the fence and the
frontmatter counted), so any later stage can point a teacher at the right line.

Block types follow Notion's names where Notion has one, so renderers map them one to one:

====================  ===================================================================
type                  fields used
====================  ===================================================================
heading_1..3          text; toggleable + children for ``:::toggle-h1|h2|h3 LABEL``
paragraph             text
bulleted_list_item    text, children (real nesting, also inside directives)
numbered_list_item    text, children, number (the number written in the source)
quote                 text (consecutive ``>`` lines form one quote)
code                  text (one plain span), language
table                 rows (tuple of rows of cells of RichText), has_header
image                 url, text (alt / caption)
divider               -
table_of_contents     -
audio, video          url
callout               icon (one emoji), children
column_list           children (only ``column`` blocks)
column                children
toggle                text (label), children            (``:::toggle-heading LABEL``)
study_text            label (e.g. "Transcript" or None), children
synced_block          children (an original) or source_id (a reference, no children)
====================  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from esl_build.errors import Problem

BlockType = Literal[
    "heading_1", "heading_2", "heading_3", "paragraph", "bulleted_list_item",
    "numbered_list_item", "quote", "code", "table", "image", "divider", "table_of_contents",
    "audio", "video", "callout", "column_list", "column", "toggle", "study_text", "synced_block",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A run of inline text with one set of annotations."""

    text: str
    bold: bool = False
    italic: bool = False
    strike: bool = False
    code: bool = False
    link: str | None = None


RichText = tuple[Span, ...]


def plain_text(rich: RichText) -> str:
    """The characters of a rich text, annotations dropped."""
    return "".join(span.text for span in rich)


@dataclass(frozen=True, slots=True)
class Block:
    """One node of the document tree. Only the fields its ``type`` uses are set."""

    type: BlockType
    line: int
    text: RichText = ()
    children: tuple[Block, ...] = ()
    url: str | None = None
    icon: str | None = None
    label: str | None = None
    toggleable: bool = False
    language: str | None = None
    number: int | None = None
    rows: tuple[tuple[RichText, ...], ...] = ()
    has_header: bool = False
    source_id: str | None = None


@dataclass(frozen=True, slots=True)
class SpeakerProfile:
    """A ``speaker_profiles`` entry: how a speaker should sound."""

    id: str
    display_name: str | None = None
    role: str | None = None
    gender: str | None = None
    age: str | None = None
    accent: str | None = None
    style: str | None = None
    voice: str | None = None  # an explicit voice id or name (the predecessor accepted it)


@dataclass(frozen=True, slots=True)
class Frontmatter:
    """The YAML frontmatter, typed. ``lines`` maps each key to its line in the original file."""

    title: str
    student: str
    level: str
    topic: tuple[str, ...]
    input_type: str
    speaker_labels: tuple[str, ...] = ()
    speaker_profiles: tuple[SpeakerProfile, ...] = ()
    icon: str | None = None
    cover: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Segment:
    """One spoken unit of the study text."""

    speaker: str | None  # None: narration / no speaker named
    text: str            # what is spoken: Markdown removed, whitespace collapsed
    markdown: str        # the source text after the speaker label
    line: int


@dataclass(frozen=True, slots=True)
class StudyText:
    """The ``:::study-text`` block, ready for speech."""

    line: int
    label: str | None
    kind: Literal["dialogue", "monologue"]
    segments: tuple[Segment, ...]

    @property
    def speakers(self) -> tuple[str, ...]:
        """Distinct named speakers, in order of first appearance."""
        seen: dict[str, None] = {}
        for segment in self.segments:
            if segment.speaker is not None:
                seen.setdefault(segment.speaker, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class Lesson:
    """A parsed lesson. ``id`` is its path under ``lessons/`` without ``.md``."""

    id: str
    path: str
    frontmatter: Frontmatter
    blocks: tuple[Block, ...]
    study_text: StudyText | None
    warnings: tuple[Problem, ...] = ()
