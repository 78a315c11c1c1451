"""Shared vocabulary, names: which characters a name may hold, and the confusable skeleton of an identifier.

Look-alike names are how a rogue agent hides beside a real one: `pn-a` followed by a zero-width space, or `pn-а`
with a Cyrillic `а`, render exactly like `pn-a`. So names refuse invisible and direction-changing characters
outright, identifiers are NFKC-normalised, and two hostnames whose skeletons (Unicode TS #39) are equal are the
same name to the hub. The confusable classes come from Unicode's confusables.txt as packaged by
confusable-homoglyphs (MIT); each character maps to the lowest code point of its class, so `а`, `ａ` and `a` share
one skeleton, as do `l`, `I`, `|` and `1`.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from importlib import resources

# Cc control, Cf format (zero-width, bidi overrides, BOM), Cs surrogates, Co private use, Cn unassigned,
# Zl/Zp line and paragraph separators: none of them has any business in a device name.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MARKS = "\u200e\u200f"  # the data file wraps right-to-left characters in direction marks


def refused_character(value: str) -> str | None:
    """The first character a name must not contain, described for an error message; None when all are fine."""
    for ch in value:
        if unicodedata.category(ch) in REFUSED_CATEGORIES:
            name = unicodedata.name(ch, "")
            return f"U+{ord(ch):04X}" + (f" {name}" if name else "")
    return None


def normalise(value: str) -> str:
    """NFKC: compatibility forms (fullwidth letters, ligatures, superscripts) become their plain letters."""
    return unicodedata.normalize("NFKC", value)


def skeleton(value: str) -> str:
    """Equal for two identifiers a person could not tell apart on screen (TS #39: NFD, map, NFD; case matters)."""
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", normalise(value))
    return unicodedata.normalize("NFD", "".join(prototypes.get(ch, ch) for ch in decomposed))


@functools.cache
def _prototypes() -> dict[str, str]:
    """Character -> the representative of its confusable class (loaded once; the data never changes).

    The packaged classes are not transitive (`|` lists `l`, `l` lists `1`, `I` lists neither), so they are merged
    into connected components first: a skeleton must be equal for every pair a person could mix up.
    """
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    parent: dict[str, str] = {}

    def root(ch: str) -> str:
        while parent.get(ch, ch) != ch:
            parent[ch] = parent.get(parent[ch], parent[ch])
            ch = parent[ch]
        return ch

    for char, homoglyphs in json.loads(raw).items():
        for glyph in (h["c"].strip(_MARKS) for h in homoglyphs):
            if len(glyph) == 1 and len(char) == 1:
                a, b = root(char), root(glyph)
                if a != b:
                    parent[max(a, b, key=ord)] = min(a, b, key=ord)
    return {ch: root(ch) for ch in parent if root(ch) != ch}
