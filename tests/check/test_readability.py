"""Reading grades: Flesch-Kincaid and SMOG by hand, sentence splitting, monotonicity, empty text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aftercare.check.readability import (
    Counts,
    _dictionary,
    grade,
    measure,
    reading_ease,
    section_text,
    smog,
    spanish_syllables,
    split_sentences,
    syllables,
    words_of,
)
from aftercare.content.model import Callout, Section
from aftercare.content.values import Slug

# Grade = 0.39 × words/sentences + 11.8 × syllables/words − 15.59


def test_one_short_sentence() -> None:
    # 6 words, 1 sentence, 6 syllables (no word has a hyphenation point):
    # 0.39 × 6/1 + 11.8 × 6/6 − 15.59 = 2.34 + 11.8 − 15.59 = −1.45
    assert measure(["The cat sat on the mat."]) == Counts(words=6, sentences=1, syllables=6)
    assert grade(["The cat sat on the mat."]) == pytest.approx(-1.45)


def test_list_items_end_sentences_and_numbers_are_not_words() -> None:
    # "Swallowing is hard. Call the doctor" -> 2 sentences (a "." is added to the unit);
    # swal-low-ing 3 + is 1 + hard 1 + call 1 + the 1 + doc-tor 2 = 9 syllables in 6 words.
    # "Wait 2 days" -> 1 sentence, 2 words ("2" is not a word), 2 syllables.
    # 0.39 × 8/3 + 11.8 × 11/8 − 15.59 = 1.04 + 16.225 − 15.59 = 1.675
    units = ["Swallowing is hard. Call the doctor", "Wait 2 days"]
    assert measure(units) == Counts(words=8, sentences=3, syllables=11)
    assert grade(units) == pytest.approx(1.675)


def test_apostrophes_join_words_and_a_run_of_marks_is_one_end() -> None:
    # Don't 1 + wor-ry 2 + it’s 1 + nor-mal 2 = 6 syllables in 4 words; "!?" is one end.
    # 0.39 × 4/1 + 11.8 × 6/4 − 15.59 = 1.56 + 17.7 − 15.59 = 3.67
    units = ["Don't worry, it’s normal!?"]
    assert measure(units) == Counts(words=4, sentences=1, syllables=6)
    assert grade(units) == pytest.approx(3.67)


def test_hard_words_give_a_high_grade() -> None:
    # im-me-di-ate-ly 5, con-tact 2, our 1, in-for-ma-tion 4, desk 1, re-gard-ing 3,
    # un-ex-pect-ed 4, com-pli-ca-tions 4 = 24 syllables in 8 words, 1 sentence:
    # 0.39 × 8 + 11.8 × 24/8 − 15.59 = 3.12 + 35.4 − 15.59 = 22.93
    text = "Immediately contact our information desk regarding unexpected complications."
    assert grade([text]) == pytest.approx(22.93)


def test_end_mark_inside_brackets_or_quotes_is_not_doubled() -> None:
    units = ["Call us (any time).", "Say “stop.”", "Rest"]
    assert measure(units).sentences == 3


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("Wash it. Then rest!", ["Wash it.", "Then rest!"]),
        ("A list item without a full stop", ["A list item without a full stop"]),
        # Times, decimals, web and email addresses hold dots that end nothing.
        ("Open 9 a.m. to 5 p.m. on weekdays. Call us.", ["Open 9 a.m. to 5 p.m. on weekdays.",
                                                          "Call us."]),
        ("Use 1.5 units, e.g. here. Rest.", ["Use 1.5 units, e.g. here.", "Rest."]),
        ("Book at https://clinic.example/book. Or call.", ["Book at https://clinic.example/book.",
                                                           "Or call."]),
        ("See www.fda.gov/medwatch or write to desk@clinic.example today.",
         ["See www.fda.gov/medwatch or write to desk@clinic.example today."]),
        ("Dr. Patel checks it.", ["Dr. Patel checks it."]),
        # A closing bracket or quote stays with its sentence; folded spaces are joined.
        ("Call us (any time). Say “stop.”  Then\n rest", ["Call us (any time).", "Say “stop.”",
                                                        "Then rest"]),
        # A piece without a word is not a sentence.
        ("Call (617) 555-0142. 1-800-FDA-1088", ["Call (617) 555-0142.", "1-800-FDA-1088"]),
        ("(617) 555-0142", []),
        ("12. 14.", []),
    ],
)
def test_split_sentences(unit: str, expected: list[str]) -> None:
    assert split_sentences(unit) == expected


def test_numbers_and_addresses_are_not_words() -> None:
    text = "Call (617) 555-0142 or 1-800-FDA-1088, see https://a.example/b or mail x@a.example"
    assert words_of(text) == ["Call", "or", "FDA", "see", "or", "mail"]
    # 6 words, 1 sentence: the address adds no hard words to the grade.
    assert measure([text]).words == 6


def test_smog_by_hand() -> None:
    # 2 sentences; words of three or more syllables: med-i-cine, in-jec-tion (cli-nic has 2).
    # 1.0430 × √(2 × 30/2) + 3.1291 = 1.0430 × 5.4772 + 3.1291 = 8.8418
    units = ["The medicine is given as an injection.", "Call the clinic"]
    assert smog(units) == pytest.approx(8.8418, abs=1e-4)


def test_smog_without_hard_words_is_its_floor_and_without_words_zero() -> None:
    assert smog(["Call us. We can help you."]) == pytest.approx(3.1291)
    assert smog([]) == 0.0
    assert smog(["(617) 555-0142"]) == 0.0


@pytest.mark.parametrize("units", [[], [""], ["   "], ["12, 14.", "3 - 4 %"]])
def test_text_without_words_grades_zero(units: list[str]) -> None:
    assert measure(units) == Counts(words=0, sentences=1, syllables=0)
    assert grade(units) == 0.0


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("the", 1),
        ("a", 1),
        ("Swallowing", 3),
        ("information", 4),
        ("immediately", 5),
        ("don’t", 1),
        # Pyphen finds no hyphenation point in "medicine"; the vowel-group count catches it.
        ("medicine", 3),
        ("times", 1),
        ("asked", 1),
    ],
)
def test_syllables_take_the_larger_of_two_estimates(word: str, expected: int) -> None:
    assert syllables(word) == expected


def test_dictionary_and_words_are_cached() -> None:
    assert _dictionary() is _dictionary()
    syllables("hospital")
    hits = syllables.cache_info().hits
    assert syllables("hospital") == 3
    assert syllables.cache_info().hits == hits + 1


def test_section_text_lists_every_unit_in_reading_order() -> None:
    section = Section(
        id=Slug("today"),
        heading="Not scored",
        paragraphs=("First paragraph.",),
        bullets=("A bullet",),
        steps=("A step",),
        callout=Callout(kind="tip", title="Good to know", text="Callout text.", bullets=("B",)),
    )
    assert section_text(section) == [
        "First paragraph.", "A bullet", "A step", "Good to know", "Callout text.", "B",
    ]
    bare = Section(id=Slug("x"), heading="X", callout=Callout(kind="tip", title="Only a title"))
    assert section_text(bare) == ["Only a title"]


# ---------------------------------------------------------------- monotonicity

SHORT = ("cat", "sat", "the", "dog", "ran", "home", "we", "help")   # 1 syllable each
LONG = ("information", "immediately", "understand", "doctor")      # 2 to 5 syllables

words = st.lists(st.sampled_from(SHORT), min_size=1, max_size=12)
# The first example loads the hyphenation dictionary; don't count that against a deadline.
examples = settings(deadline=None)


@examples
@given(st.lists(words, min_size=1, max_size=6), st.data())
def test_longer_words_raise_the_grade(sentences: list[list[str]], data: st.DataObject) -> None:
    before = [" ".join(s) + "." for s in sentences]
    row = data.draw(st.integers(0, len(sentences) - 1))
    col = data.draw(st.integers(0, len(sentences[row]) - 1))
    longer = [list(s) for s in sentences]
    longer[row][col] = data.draw(st.sampled_from(LONG))
    after = [" ".join(s) + "." for s in longer]
    assert grade(after) > grade(before)


@examples
@given(st.lists(words, min_size=2, max_size=6), st.data())
def test_longer_sentences_raise_the_grade(sentences: list[list[str]], data: st.DataObject) -> None:
    before = [" ".join(s) + "." for s in sentences]
    # Join two neighbouring sentences into one: same words and syllables, one sentence fewer.
    at = data.draw(st.integers(0, len(sentences) - 2))
    joined = [*sentences[:at], sentences[at] + sentences[at + 1], *sentences[at + 2 :]]
    after = [" ".join(s) + "." for s in joined]
    assert grade(after) > grade(before)


# ---------------------------------------------------------------- Spanish
# Fernández-Huerta, corrected: 206.84 − 0.60 × syllables per 100 words − 1.02 × words/sentence


@pytest.mark.parametrize(("word", "expected"), [
    ("que", 1), ("hoy", 1), ("muy", 1), ("y", 1),          # a glide joins its vowel
    ("bueno", 2), ("ciudad", 2), ("cuello", 2),            # diphthongs
    ("día", 2), ("país", 2), ("leer", 2), ("aéreo", 4),    # strong vowels apart (hiatus)
    ("ayuda", 3), ("desmayar", 3),                         # y before a vowel is a consonant
    ("inyección", 3), ("médico", 3), ("pingüino", 3),
    ("tratamiento", 4), ("zanahoria", 4), ("anticoagulante", 7),  # co-a: a hiatus
])
def test_spanish_syllables_follow_spanish_rules(word: str, expected: int) -> None:
    assert spanish_syllables(word) == expected


def test_accented_words_are_one_word_each() -> None:
    assert words_of("¿Cómo está? Llámenos al 911, por favor.") == [
        "Cómo", "está", "Llámenos", "al", "por", "favor"]
    assert words_of("The café's menu, naïve.") == ["The", "café's", "menu", "naïve"]
    # "a. m." is one word, and its dots end no sentence.
    assert words_of("de 9 a. m. a 5 p. m.") == ["de", "am", "a", "pm"]
    assert split_sentences("Abrimos a las 9 a. m. y cerramos tarde.") == [
        "Abrimos a las 9 a. m. y cerramos tarde."]


def test_fernandez_huerta_by_hand() -> None:
    # "Llámenos si tiene algo de esto." 6 words, 1 sentence; lla-me-nos 3, si 1, tie-ne 2,
    # al-go 2, de 1, es-to 2 = 11 syllables: 206.84 − 60 × 11/6 − 1.02 × 6 = 90.72
    text = ["Llámenos si tiene algo de esto."]
    assert measure(text, "es") == Counts(words=6, sentences=1, syllables=11)
    assert reading_ease(text) == pytest.approx(90.72)
    # Two sentences of 3 words: words per sentence, not sentences per 100 words, so shorter
    # sentences read easier. 6 words, 2 sentences, 11 syllables: 206.84 − 110 − 3.06 = 93.78
    assert reading_ease(["Llámenos si tiene.", "Algo de esto."]) == pytest.approx(93.78)
    assert reading_ease([]) == 100.0


def test_the_clinics_grade_has_its_fernandez_huerta_equivalent() -> None:
    from aftercare.check.reading import fernandez_huerta_minimum

    # The table: 80-90 reads at grade 5, 70-80 at 6, 60-70 at 7 to 8, 50-60 at 9 to 12.
    assert fernandez_huerta_minimum(5) == 80.0
    assert fernandez_huerta_minimum(6) == 70.0
    assert fernandez_huerta_minimum(8) == 60.0
    assert fernandez_huerta_minimum(9) == 57.5
    assert fernandez_huerta_minimum(12) == 50.0
    assert fernandez_huerta_minimum(3) == 100.0
