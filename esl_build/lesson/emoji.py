"""Emoji as users see them: one icon may be several code points (modifiers, ZWJ, flags)."""

from __future__ import annotations

_EMOJI_TAIL = frozenset(range(0x1F3FB, 0x1F400)) | {0xFE0F, 0xFE0E, 0x20E3}


def first_grapheme(text: str) -> str:
    """The first user-perceived character of ``text`` (an emoji with its modifiers and ZWJs)."""
    if not text:
        return ""
    end = 1
    if 0x1F1E6 <= ord(text[0]) <= 0x1F1FF and len(text) > 1 and 0x1F1E6 <= ord(text[1]) <= 0x1F1FF:
        return text[:2]  # a flag: two regional indicators
    while end < len(text):
        code = ord(text[end])
        if code in _EMOJI_TAIL or 0xE0020 <= code <= 0xE007F:
            end += 1
        elif code == 0x200D and end + 1 < len(text):
            end += 2
        else:
            break
    return text[:end]


def is_single_emoji(text: str) -> bool:
    """True for one emoji (possibly built from several code points), nothing else."""
    text = text.strip()
    if not text or first_grapheme(text) != text:
        return False
    if "\u20e3" in text:
        return True  # a keycap: 1️⃣ #️⃣
    return ord(text[0]) > 0x7F and not text[0].isalnum()
