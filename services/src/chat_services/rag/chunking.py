"""Splitting a document into passages: sentence-aligned, each at most a fixed size."""

from __future__ import annotations

import re

PASSAGE_MAX_CHARS = 800
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def split_passages(text: str, max_chars: int = PASSAGE_MAX_CHARS) -> list[str]:
    """Passages of whole sentences up to ``max_chars``; a longer sentence is cut at spaces."""
    passages: list[str] = []
    current = ""
    for sentence in _sentences(text, max_chars):
        if current and len(current) + 1 + len(sentence) > max_chars:
            passages.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        passages.append(current)
    return passages


def _sentences(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars + 1)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces
