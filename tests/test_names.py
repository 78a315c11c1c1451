"""Names: refused characters, NFKC and confusable skeletons (the look-alike hostnames of the hardening issue)."""

from __future__ import annotations

import pytest

from nvrmon import names


@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\ufeff", "\u2028", "\u2029", "\u200d", "\x07", "\ue000"])
def test_names_refuse_invisible_and_direction_characters(char: str) -> None:
    described = names.refused_character(f"pn-a{char}")
    assert described is not None and described.startswith(f"U+{ord(char):04X}")


def test_names_accept_ordinary_international_names() -> None:
    for name in ["Lobby cam", "Café Nord", "東京-入口", "Zürich Süd", "nvr-01 (spare)"]:
        assert names.refused_character(name) is None


def test_names_normalise_compatibility_forms() -> None:
    assert names.normalise("ｎｖｒ－１") == "nvr-1"  # fullwidth
    assert names.normalise("ﬁre-door") == "fire-door"  # ligature


@pytest.mark.parametrize(
    ("lookalike", "original"),
    [("pn-\u0430", "pn-a"), ("pn-ａ", "pn-a"), ("nvr-l", "nvr-1"), ("nvr-I", "nvr-1"), ("nvr-O", "nvr-0"),
     ("cafe\u0301", "café"), ("ѕite-1", "site-1")],
)  # fmt: skip
def test_names_lookalikes_share_a_skeleton(lookalike: str, original: str) -> None:
    assert lookalike != original
    assert names.skeleton(lookalike) == names.skeleton(original)


@pytest.mark.parametrize(("a", "b"), [("nvr-01", "nvr-02"), ("north-1", "south-1"), ("pn-a", "PN-A"), ("cam", "can")])
def test_names_distinct_names_keep_distinct_skeletons(a: str, b: str) -> None:
    assert names.skeleton(a) != names.skeleton(b)
