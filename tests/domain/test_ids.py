"""Public ids: the same 128 bits as the UUID, in a ULID's Crockford base32."""

from __future__ import annotations

import random
import uuid

from domain.ids import canonical, decode_ulid, encode_ulid, parse, render

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def test_encoding_matches_the_five_bits_at_a_time_definition() -> None:
    values = [0, 1, 2**128 - 1, *(random.getrandbits(128) for _ in range(2000))]

    assert [encode_ulid(v) for v in values] == [_reference(v) for v in values]


def test_decoding_inverts_encoding_and_keeps_order() -> None:
    values = sorted(random.getrandbits(128) for _ in range(500))
    encoded = [encode_ulid(v) for v in values]

    assert [decode_ulid(text) for text in encoded] == values
    assert encoded == sorted(encoded)


def test_a_rendered_id_parses_back_to_its_uuid_only_with_its_own_prefix() -> None:
    value = uuid.uuid4()
    public = render("iss", value)

    assert parse("iss", public) == value
    assert parse("pat", public) is None
    assert canonical("iss", public.lower()) == public


def test_malformed_ids_do_not_parse() -> None:
    for text in ("iss_", "iss_123", "iss_8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "iss_01KV1PX3NR96XJRGD48NNHH4U!", "nope"):
        assert parse("iss", text) is None
