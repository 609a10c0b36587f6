from __future__ import annotations

from engine.tokenizer import BOS_ID
from engine.tokenizer import EOS_ID
from engine.tokenizer import StreamDecoder
from engine.tokenizer import decode
from engine.tokenizer import encode


def test_round_trip_including_multibyte_text() -> None:
    text = "héllo wörld ✓"
    ids = encode(text)
    assert ids[0] == BOS_ID
    assert decode(ids) == text


def test_stream_decoder_holds_back_partial_characters() -> None:
    decoder = StreamDecoder()
    pieces = [decoder.push(b) for b in "✓".encode()]
    assert pieces[:-1] == ["", ""]
    assert pieces[-1] == "✓"
    assert decoder.push(EOS_ID) == ""
