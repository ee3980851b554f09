"""Normalisation shared by the index and queries: accents, hyphens, suffixes, French and English."""

from __future__ import annotations

import pytest

from workers.terms import Term, name_key, name_keys, quoted, text_keys, tokens


@pytest.mark.parametrize(("spelling", "key"), [
    ("hydro-quebec", "hydroquebec"),
    ("Hydro Québec", "hydroquebec"),
    ("HYDRO-QUÉBEC", "hydroquebec"),
    ("HydroQuébec", "hydroquebec"),
    ("Hydro-Québec Inc.", "hydroquebec"),
    ("Amazon Web Services, Inc.", "amazonwebservices"),
    ("Amazon Web Services LLC", "amazonwebservices"),
    ("Bombardier Ltée", "bombardier"),
    ("Bombardier Limited", "bombardier"),
    ("Desjardins S.E.N.C.", "desjardins"),
    ("Cascades Canada ULC", "cascadescanada"),
    ("Énergir Corp.", "energir"),
    ("Société de transport de Montréal", "societedetransportdemontreal"),
])
def test_spellings_of_one_name_share_a_key(spelling: str, key: str) -> None:
    """Case, accents, hyphens, spaces, punctuation and corporate suffixes do not change a name's key."""
    assert name_key(spelling) == key


def test_a_name_is_indexed_by_its_words_and_its_joined_key() -> None:
    """A multi-word name matches by any of its words and by the whole name written without spaces."""
    assert name_keys("Hydro-Québec Inc.") == ["hydro", "quebec", "hydroquebec"]
    assert name_keys("Bank of Canada") == ["bank", "canada", "bankofcanada"]
    assert name_keys("Cogeco") == ["cogeco"]


def test_free_text_indexes_words_and_hyphenated_compounds() -> None:
    """A title's words are indexed without stop words, and 'Hydro-Québec' also as 'hydroquebec'."""
    keys = text_keys("Le contrat d'Hydro-Québec avec la Ville")
    assert {"contrat", "hydro", "quebec", "hydroquebec", "ville"} <= set(keys)
    assert "le" not in keys and "la" not in keys


def test_french_and_english_letters_and_other_scripts_survive() -> None:
    """Accents fold to plain letters and non-Latin scripts stay searchable."""
    assert tokens("Ministère des Finances") == ["ministere", "des", "finances"]
    assert tokens("Газпром 中国银行") == ["газпром", "中国银行"]


@pytest.mark.parametrize("raw", ["", "   ", "Inc.", "the", "!!!", "🦄", "\u0301", "\udcff", "\x00", "le la les"])
def test_terms_without_a_word_are_empty(raw: str) -> None:
    """Punctuation, emoji, lone combining marks, surrogates, suffixes and stop words give an empty term."""
    assert Term.parse(raw).empty


def test_query_term_carries_joined_key_and_words() -> None:
    """A quoted phrase is one term: its joined key and its words, suffix dropped."""
    term = Term.parse("Amazon Web Services Inc")
    assert term.key == "amazonwebservices"
    assert term.words == ("amazon", "web", "services")


def test_terms_are_shown_as_one_would_type_them_again() -> None:
    """A term holding a space is shown in double quotes, the others as they are."""
    assert quoted(["amazon", "hydro quebec"]) == 'amazon "hydro quebec"'
    assert quoted([]) == ""
