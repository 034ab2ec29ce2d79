"""Page tokens from their specification: the exact bytes a position encodes to, which positions a
token may carry, how long a token may be, and the status, field and words of every refusal."""

from __future__ import annotations

import base64
import json

import pytest

from chat_services.errors import InvalidArgument
from chat_services.pagination import MAX_TOKEN_CHARS, decode_token, encode_token, position_after

NOT_OURS = "page token is not one this server issued"
OTHER_LIST = "page token belongs to a different list; start again without one"


def token_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def refusal(token: str, **options: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        decode_token(token, scope={"list": "x"}, **options)
    return refused.value


def test_a_position_encodes_to_compact_sorted_json_without_padding() -> None:
    # '{"a":"x","b":12}' is 16 bytes: base64 would end in "==", which is left off.
    assert encode_token({"b": 12, "a": "x"}) == "eyJhIjoieCIsImIiOjEyfQ"
    assert base64.urlsafe_b64decode("eyJhIjoieCIsImIiOjEyfQ==") == b'{"a":"x","b":12}'


@pytest.mark.parametrize("after", [1, 2**63 - 1])
def test_positions_are_positive_64_bit_integers(after: int) -> None:
    assert position_after(after) == after


@pytest.mark.parametrize("after", [0, -1, 2**63, True, "5", 1.0, None])
def test_any_other_position_is_not_ours(after: object) -> None:
    with pytest.raises(InvalidArgument) as refused:
        position_after(after)
    assert (refused.value.message, refused.value.field) == (NOT_OURS, "page.page_token")


def test_a_token_of_the_longest_length_is_read_and_a_longer_one_is_not() -> None:
    # A position padded so that its token is exactly MAX_TOKEN_CHARS characters.
    filler = "y" * (MAX_TOKEN_CHARS * 3 // 4 - len('{"list":"x","pad":""}'))
    longest = encode_token({"list": "x", "pad": filler})
    assert len(longest) == MAX_TOKEN_CHARS
    assert decode_token(longest, scope={"list": "x"})["pad"] == filler
    refused = refusal(longest + "A")
    assert (refused.message, refused.field) == (NOT_OURS + " (too long)", "page.page_token")


@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe"])
def test_a_token_that_is_not_json_is_not_ours(raw: bytes) -> None:
    refused = refusal(token_of(raw), field="page_token")
    assert (refused.message, refused.field) == (NOT_OURS, "page_token")


@pytest.mark.parametrize("raw", [b"[1]", b'"x"', b"7", b"null"])
def test_a_token_that_is_not_an_object_belongs_to_no_list(raw: bytes) -> None:
    refused = refusal(token_of(raw))
    assert (refused.message, refused.field) == (OTHER_LIST, "page.page_token")


@pytest.mark.parametrize("position", [{"list": "y", "after": 1}, {"after": 1}])
def test_a_token_of_another_list_is_refused(position: dict[str, object]) -> None:
    refused = refusal(token_of(json.dumps(position).encode()), field="page_token")
    assert (refused.message, refused.field) == (OTHER_LIST, "page_token")
