"""Byte-level tokenizer: every UTF-8 byte is a token, plus BOS and EOS.

A byte vocabulary needs no downloaded vocabulary file and round-trips any text, which keeps
the engine self-contained while still exercising real prompt-length costs.
"""

from __future__ import annotations

import codecs

BYTE_VOCAB = 256
BOS_ID = 256
EOS_ID = 257
VOCAB_SIZE = 258


def encode(text: str, *, add_bos: bool = True) -> list[int]:
    ids = list(text.encode("utf-8"))
    return [BOS_ID, *ids] if add_bos else ids


def min_token_count(text: str, *, add_bos: bool = True) -> int:
    """A lower bound on ``len(encode(text))`` that costs no encoding: every character is at
    least one byte, so a prompt too long for the context is refused without tokenizing it."""
    return len(text) + (1 if add_bos else 0)


def decode(ids: list[int]) -> str:
    return bytes(i for i in ids if i < BYTE_VOCAB).decode("utf-8", errors="replace")


class StreamDecoder:
    """Turns a token stream into text pieces without splitting multi-byte characters.

    A random-weight model emits arbitrary bytes; an incremental decoder holds back an
    incomplete UTF-8 sequence until the next byte arrives instead of emitting garbage twice.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        if token_id >= BYTE_VOCAB:
            return ""
        return str(self._decoder.decode(bytes([token_id])))

    def flush(self) -> str:
        return str(self._decoder.decode(b"", final=True))


def chat_prompt(messages: list[tuple[str, str]]) -> str:
    """A minimal chat template: one ``role: content`` line per message, then the cue."""
    lines = [f"{role}: {content}" for role, content in messages]
    return "\n".join(lines) + "\nassistant: "
