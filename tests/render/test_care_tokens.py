"""Care page tokens: bound to one message and its send time, refused when altered or foreign."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftercare.render.tokens import read_care, sign, sign_care, verify

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
PUBLIC_ID = "3f2b8c1e9a7d4e6f8b0c2d4e6f8a0b1c"
SENT = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC)


def test_a_token_names_its_message_and_send_time_in_letters_and_digits_only() -> None:
    token = sign_care(PUBLIC_ID, SENT, KEY)
    # Lower-case base32: no separator a mail client could break a link at, and no part of
    # it can read as a word (a privacy word list would otherwise catch random tokens).
    assert re.fullmatch(r"[a-z2-7]+", token) and len(token) == 66
    link = read_care(token, KEY)
    assert (link.public_id, link.issued, link.genuine) == (PUBLIC_ID, SENT, True)
    assert sign_care(PUBLIC_ID, SENT, KEY) == token  # the same message, the same link


# Public ids are ASCII (32 hex digits today); a 60-character one of 4-byte characters would
# not fit the token's length limit, and no message has one.
@given(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60),
       st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1),
                    timezones=st.just(dt.UTC)))
def test_any_public_id_and_send_time_round_trip(public_id: str, sent: dt.datetime) -> None:
    link = read_care(sign_care(public_id, sent, KEY), KEY)
    assert link.genuine and link.public_id == public_id
    assert link.issued == sent.replace(microsecond=0)


def test_every_single_character_change_is_refused() -> None:
    token = sign_care(PUBLIC_ID, SENT, KEY)
    for index, char in enumerate(token):
        for replacement in {"a", "q", "2", "7", "A"} - {char}:
            altered = token[:index] + replacement + token[index + 1 :]
            assert not read_care(altered, KEY).genuine, altered


def test_a_token_signed_with_another_key_is_refused() -> None:
    foreign = sign_care(PUBLIC_ID, SENT, OTHER_KEY)
    link = read_care(foreign, KEY)
    assert link.public_id == PUBLIC_ID and not link.genuine


def test_a_later_send_time_or_another_id_cannot_be_spliced_in() -> None:
    token = sign_care(PUBLIC_ID, SENT, KEY)
    raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    later = raw[:1] + (int.from_bytes(raw[1:5], "big") + 86_400 * 365).to_bytes(4, "big")
    for body in (later + raw[5:21], raw[:5] + bytes(16)):
        spliced = base64.b32encode(body + raw[21:]).decode().rstrip("=").lower()
        assert not read_care(spliced, KEY).genuine


def test_unsubscribe_and_care_tokens_never_pass_for_each_other() -> None:
    # Each is signed for its own purpose: a MAC made for one is worthless for the other.
    care = sign_care(PUBLIC_ID, SENT, KEY)
    assert verify(care, KEY) is None
    assert not read_care(sign(PUBLIC_ID, KEY), KEY).genuine
    # Even the raw MAC of the same bytes without the care purpose is refused.
    raw = base64.b32decode(care.upper() + "=" * (-len(care) % 8))
    body = raw[:-20]
    bare = hmac.new(KEY, body, hashlib.sha256).digest()[:20]
    forged = base64.b32encode(body + bare).decode().rstrip("=").lower()
    assert not read_care(forged, KEY).genuine


@pytest.mark.parametrize("token", [
    "", "a", "abc", "AFVQ", "afvq-zzzz", "afvq.zzzz", "é" * 66, "a" * 201, "0" * 66,
    "aaaaaaaa", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
])
def test_malformed_tokens_are_refused_and_name_no_message(token: str) -> None:
    link = read_care(token, KEY)
    assert not link.genuine and link.public_id == "0" * 32


def test_upper_case_or_padded_spellings_are_refused() -> None:
    token = sign_care(PUBLIC_ID, SENT, KEY)
    assert not read_care(token.upper(), KEY).genuine
    assert not read_care(token + "==", KEY).genuine


def test_a_send_time_outside_four_bytes_is_refused_when_signing() -> None:
    with pytest.raises(ValueError, match="between 1970 and 2106"):
        sign_care(PUBLIC_ID, dt.datetime(2107, 1, 1, tzinfo=dt.UTC), KEY)
