"""Request bodies of the OpenAI-compatible endpoints.

Types are strict (``"16"`` is not a valid ``max_tokens``), as the OpenAI API is. Unknown
fields are ignored so that ordinary OpenAI clients, which send many optional fields, work.
Sampling parameters are accepted but decoding is always greedy (documented).

``/v1/completions`` also takes what a client scoring text needs, the way vLLM does: a prompt
given as token ids, ``echo`` (the prompt comes back in the text and its tokens in the
logprobs), ``logprobs`` (the chosen token's log-probability and that many alternatives per
position) and vLLM's ``return_tokens_as_token_ids`` (tokens named ``token_id:N``: a byte
that is not valid UTF-8 on its own has no other unambiguous name).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import StrictBool
from pydantic import StrictFloat
from pydantic import StrictInt
from pydantic import StrictStr
from pydantic import field_validator


def _encodable(text: str) -> str:
    """A lone surrogate (``"\\ud800"``) is legal in JSON but has no UTF-8 bytes to tokenize."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it holds a lone surrogate)") from None
    return text


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class _GenerationParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    max_tokens: StrictInt | None = Field(default=None, gt=0)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: StrictInt = Field(default=1, ge=1, le=1)
    temperature: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | StrictInt | None = Field(default=None, gt=0, le=1)
    ignore_eos: StrictBool = False
    """vLLM's extension: keep generating past EOS, for load tests with fixed output length."""

    _model_encodable = field_validator("model")(_encodable)


MAX_LOGPROBS = 20  # vLLM's default max_logprobs (and OpenAI's top_logprobs cap)


def _prompt(value: str | list[int]) -> str | list[int]:
    if isinstance(value, str):
        return _encodable(value)
    if not value:
        raise ValueError("a prompt of token ids must not be empty")
    return value


class CompletionRequest(_GenerationParams):
    prompt: StrictStr | list[StrictInt]
    echo: StrictBool = False
    logprobs: StrictInt | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    return_tokens_as_token_ids: StrictBool = False

    _prompt_valid = field_validator("prompt")(_prompt)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer"]
    content: StrictStr

    _content_encodable = field_validator("content")(_encodable)


class ChatCompletionRequest(_GenerationParams):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: StrictInt | None = Field(default=None, gt=0)
