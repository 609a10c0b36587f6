"""The HTTP face of the engine: OpenAI-compatible inference, health, metrics, admin.

``create_app`` builds a FastAPI app around an ``Engine``; there is no module-level app so
tests and the CLI each own their engine, registry and admin token.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.responses import Response
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from engine.batcher import AsyncSink
from engine.batcher import GenerationRequest
from engine.batcher import QueueFullError
from engine.batcher import TokenLogprob
from engine.config import ConfigError
from engine.config import merge_config
from engine.edge import DEFAULT_MAX_BODY_BYTES
from engine.edge import BodyLimitMiddleware
from engine.edge import BodyTooLargeError
from engine.edge import UnexpectedErrorMiddleware
from engine.edge import too_large_response
from engine.errors import ApiError
from engine.errors import error_body
from engine.errors import from_validation_errors
from engine.faults import FaultError
from engine.faults import Faults
from engine.schemas import ChatCompletionRequest
from engine.schemas import CompletionRequest
from engine.service import ConfigBuildError
from engine.service import Engine
from engine.tokenizer import BOS_ID
from engine.tokenizer import EOS_ID
from engine.tokenizer import VOCAB_SIZE
from engine.tokenizer import StreamDecoder
from engine.tokenizer import chat_prompt
from engine.tokenizer import decode
from engine.tokenizer import encode
from engine.tokenizer import min_token_count

DEFAULT_COMPLETION_MAX_TOKENS = 16  # the OpenAI default for /v1/completions


class _Generation:
    """One submitted request and the text it produced so far."""

    def __init__(
        self,
        engine: Engine,
        prompt_ids: list[int],
        max_tokens: int,
        ignore_eos: bool,
        stream: bool,
        *,
        logprobs: int | None = None,
        prompt_logprobs: bool = False,
    ):
        self.sink = AsyncSink(asyncio.get_running_loop())
        self.request = GenerationRequest(
            prompt_ids=prompt_ids,
            max_tokens=max_tokens,
            sink=self.sink,
            ignore_eos=ignore_eos,
            stream_tokens=stream,
            logprobs=logprobs,
            prompt_logprobs=prompt_logprobs,
        )
        self.decoder = StreamDecoder()
        try:
            engine.submit(self.request)
        except QueueFullError as exc:
            engine.metrics.rejected()
            raise ApiError(
                429,
                f"{exc}; retry after {exc.retry_after_s} s",
                type_="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(exc.retry_after_s)},
            ) from exc

    async def pieces(self) -> AsyncIterator[tuple[str, str | None]]:
        """Yields ``(text, finish_reason)``; the reason is set on the last item only."""
        try:
            while True:
                kind, value = await self.sink.events.get()
                if kind == "token":
                    text = self.decoder.push(int(value))
                    if text:
                        yield text, None
                elif kind == "done":
                    if not self.request.stream_tokens:
                        yield decode(self.request.generated), str(value)
                    else:
                        yield self.decoder.flush(), str(value)
                    return
                else:
                    raise ApiError(500, str(value), type_="internal_error", code="engine_error")
        finally:
            if self.request.finished_reason is None:
                self.request.cancel()

    def usage(self) -> dict[str, int]:
        prompt = len(self.request.prompt_ids)
        completion = len(self.request.generated)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def _token_name(token: int, as_ids: bool) -> str:
    """vLLM's spellings: ``token_id:N`` on request, else the text of a token; a byte that is
    not text on its own is ``bytes:\\xNN``."""
    if as_ids:
        return f"token_id:{token}"
    if token == BOS_ID:
        return "<bos>"
    if token == EOS_ID:
        return "<eos>"
    if token < 0x80:
        return chr(token)
    return f"bytes:\\x{token:02x}"


def completion_logprobs(
    prompt_ids: list[int],
    prompt_scores: list[TokenLogprob] | None,
    generated: list[TokenLogprob],
    *,
    as_ids: bool,
) -> dict[str, Any]:
    """The ``logprobs`` object of a legacy completion choice, as vLLM (and OpenAI) return
    it: parallel lists of tokens, their log-probabilities, the alternatives per position
    (the chosen token always among them) and each token's offset in the choice's text. With
    ``prompt_scores`` (``echo``) the prompt's tokens come first; the first has no score."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    text_offset: list[int] = []
    decoder = StreamDecoder()
    offset = 0

    def add(token: int, entry: TokenLogprob | None) -> None:
        nonlocal offset
        tokens.append(_token_name(token, as_ids))
        text_offset.append(offset)
        offset += len(decoder.push(token))
        if entry is None:
            token_logprobs.append(None)
            top_logprobs.append(None)
            return
        token_logprobs.append(entry.logprob)
        alternatives = {_token_name(t, as_ids): lp for t, lp in entry.top}
        alternatives.setdefault(_token_name(token, as_ids), entry.logprob)
        top_logprobs.append(alternatives)

    if prompt_scores is not None:
        add(prompt_ids[0], None)
        for token, entry in zip(prompt_ids[1:], prompt_scores, strict=True):
            add(token, entry)
    for entry in generated:
        add(entry.token, entry)
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": text_offset,
    }


def _inference(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/v1/")


def create_app(
    engine: Engine,
    *,
    admin_token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """An app serving ``engine``. The engine is started and shut down with the app.

    ``max_body_bytes`` bounds every request body; a larger one is refused with 413 while it
    is read, before it is parsed.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(engine.start)
        try:
            yield
        finally:
            await asyncio.to_thread(engine.shutdown)

    app = FastAPI(title="cplane reference engine", lifespan=lifespan)
    faults = Faults(on_weight_noise=engine.set_weight_noise)
    model_name = engine.served_model_name
    context = engine.spec.max_context

    def count_refused(scope: Scope) -> None:
        if _inference(scope):
            engine.metrics.invalid()

    def count_error(scope: Scope) -> None:
        if _inference(scope):
            engine.metrics.errored()

    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, on_refused=count_refused)
    app.add_middleware(UnexpectedErrorMiddleware, on_error=count_error)  # last: outermost

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own errors (unknown path, a body that cannot be parsed, 413 mid-read)
        # in the OpenAI shape, like every other error of this server.
        if exc.status_code == 400 and _inference(request.scope):
            engine.metrics.invalid()
        if isinstance(exc, BodyTooLargeError):
            return too_large_response(max_body_bytes)
        kind = "invalid_request_error" if exc.status_code < 500 else "internal_error"
        body = error_body(str(exc.detail), kind, None, None)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        admin = request.url.path.startswith("/admin")
        if not admin:
            engine.metrics.invalid()
        return from_validation_errors(exc.errors(), 422 if admin else 400).response()

    def check_model(model: str) -> None:
        if model != model_name:
            engine.metrics.invalid()
            raise ApiError(
                400,
                f"the model {model!r} does not exist; this server serves {model_name!r}",
                param="model",
                code="model_not_found",
            )

    async def tokenize(prompt: str, prompt_param: str) -> list[int]:
        """Refuses a prompt that cannot fit the context before encoding it, and encodes in a
        worker thread: a long prompt must not stall the event loop (and ``/healthz``)."""
        at_least = min_token_count(prompt)
        if at_least >= context:
            engine.metrics.invalid()
            raise ApiError(
                400,
                f"this model's maximum context length is {context} tokens; the prompt has "
                f"at least {at_least} tokens, leaving no room to generate",
                param=prompt_param,
                code="context_length_exceeded",
            )
        return await asyncio.to_thread(encode, prompt)

    def check_lengths(prompt_ids: list[int], max_tokens: int | None, prompt_param: str) -> int:
        """Returns the effective max_tokens; the prompt plus output must fit the context."""
        if len(prompt_ids) >= context:
            engine.metrics.invalid()
            raise ApiError(
                400,
                f"this model's maximum context length is {context} tokens; the prompt has "
                f"{len(prompt_ids)} tokens, leaving no room to generate",
                param=prompt_param,
                code="context_length_exceeded",
            )
        room = context - len(prompt_ids)
        if max_tokens is None:
            return room
        if max_tokens > room:
            engine.metrics.invalid()
            raise ApiError(
                400,
                f"this model's maximum context length is {context} tokens; you requested "
                f"{len(prompt_ids) + max_tokens} tokens ({len(prompt_ids)} in the prompt, "
                f"{max_tokens} for the completion)",
                param="max_tokens",
                code="context_length_exceeded",
            )
        return max_tokens

    def stream_response(
        gen: _Generation,
        chunk: Callable[[str | None, str | None], dict[str, Any]],
        include_usage: bool,
    ) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            try:
                async for text, reason in gen.pieces():
                    if text:
                        yield _sse(chunk(text, None))
                    if reason is not None:
                        yield _sse(chunk(None, reason))
                if include_usage:
                    last = chunk(None, None)
                    last["choices"] = []
                    last["usage"] = gen.usage()
                    yield _sse(last)
            except ApiError as exc:
                yield _sse(exc.body())
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream")

    async def collect(gen: _Generation) -> tuple[str, str]:
        parts: list[str] = []
        reason = "length"
        async for text, finish in gen.pieces():
            parts.append(text)
            if finish is not None:
                reason = finish
        return "".join(parts), reason

    def prompt_token_ids(prompt: list[int]) -> list[int]:
        for token in prompt:
            if not 0 <= token < VOCAB_SIZE:
                engine.metrics.invalid()
                raise ApiError(
                    400,
                    f"token id {token} is outside this model's vocabulary (0..{VOCAB_SIZE - 1})",
                    param="prompt",
                    code="invalid_token_id",
                )
        return list(prompt)

    def refuse_streamed(param: str) -> None:
        engine.metrics.invalid()
        raise ApiError(
            400, f"{param} is not supported with stream=true on this server", param=param
        )

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest) -> JSONResponse | StreamingResponse:
        check_model(body.model)
        if body.stream and body.logprobs is not None:
            refuse_streamed("logprobs")
        if body.stream and body.echo:
            refuse_streamed("echo")
        if isinstance(body.prompt, str):
            prompt_ids = await tokenize(body.prompt, "prompt")
        else:
            prompt_ids = prompt_token_ids(body.prompt)
        max_tokens = check_lengths(
            prompt_ids, body.max_tokens or DEFAULT_COMPLETION_MAX_TOKENS, "prompt"
        )
        gen = _Generation(
            engine,
            prompt_ids,
            max_tokens,
            body.ignore_eos,
            body.stream,
            logprobs=body.logprobs,
            prompt_logprobs=body.echo and body.logprobs is not None,
        )
        faults.on_request()
        rid = f"cmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        def chunk(text: str | None, reason: str | None) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "text_completion",
                "created": created,
                "model": model_name,
                "choices": [
                    {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}
                ],
            }

        if body.stream:
            include = bool(body.stream_options and body.stream_options.include_usage)
            return stream_response(gen, chunk, include)
        text, reason = await collect(gen)
        if body.echo:
            text = decode(prompt_ids) + text
        result = chunk(text, reason)
        if body.logprobs is not None:
            request = gen.request
            result["choices"][0]["logprobs"] = completion_logprobs(
                prompt_ids,
                request.prompt_token_logprobs if body.echo else None,
                request.generated_logprobs,
                as_ids=body.return_tokens_as_token_ids,
            )
        result["usage"] = gen.usage()
        return JSONResponse(result)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> JSONResponse | StreamingResponse:
        check_model(body.model)
        prompt = chat_prompt([(m.role, m.content) for m in body.messages])
        prompt_ids = await tokenize(prompt, "messages")
        max_tokens = check_lengths(
            prompt_ids, body.max_completion_tokens or body.max_tokens, "messages"
        )
        gen = _Generation(engine, prompt_ids, max_tokens, body.ignore_eos, body.stream)
        faults.on_request()
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        first = True

        def chunk(text: str | None, reason: str | None) -> dict[str, Any]:
            nonlocal first
            delta: dict[str, Any] = {}
            if first:
                delta["role"] = "assistant"
                first = False
            if text is not None:
                delta["content"] = text
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_name,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
                ],
            }

        if body.stream:
            include = bool(body.stream_options and body.stream_options.include_usage)
            return stream_response(gen, chunk, include)
        text, reason = await collect(gen)
        return JSONResponse(
            {
                "id": rid,
                "object": "chat.completion",
                "created": created,
                "model": model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": reason,
                    }
                ],
                "usage": gen.usage(),
            }
        )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": model_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "cplane",
                    "max_model_len": context,
                }
            ],
        }

    @app.get("/healthz")
    @app.get("/health")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": model_name, "config": engine.config.as_dict()}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def require_admin(request: Request) -> None:
        if not admin_token:
            raise ApiError(
                403,
                "the admin API is disabled: start the engine with --admin-token "
                "(or CPLANE_ENGINE_ADMIN_TOKEN) to enable it",
                type_="permission_error",
                code="admin_disabled",
            )
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), admin_token.encode()
        ):
            raise ApiError(
                401,
                "missing or wrong admin bearer token",
                type_="authentication_error",
                code="invalid_token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def admin(
        handler: Callable[[Request], Awaitable[dict[str, Any]]],
    ) -> Callable[[Request], Awaitable[dict[str, Any]]]:
        async def guarded(request: Request) -> dict[str, Any]:
            require_admin(request)
            return await handler(request)

        guarded.__name__ = handler.__name__
        return guarded

    async def get_config(_: Request) -> dict[str, Any]:
        return engine.config.as_dict()

    async def put_config(request: Request) -> dict[str, Any]:
        try:
            patch = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(422, f"malformed JSON body: {exc}", code="invalid_json") from exc
        except RecursionError as exc:
            # json.loads recurses per nesting level; a config is one flat object.
            raise ApiError(422, "the body is nested too deeply", code="invalid_json") from exc
        if not isinstance(patch, dict):
            raise ApiError(422, "the body must be a JSON object", code="invalid_type")
        try:
            new = merge_config(engine.config, patch)
            engine.search_space.validate(new)
            applied = await asyncio.to_thread(engine.switch, new)
        except ConfigError as exc:
            raise ApiError(422, exc.message, param=exc.param, code="invalid_config") from exc
        except ConfigBuildError as exc:
            raise ApiError(
                500, str(exc), type_="internal_error", code="config_build_failed"
            ) from exc
        return applied.as_dict()

    async def search_space(_: Request) -> dict[str, Any]:
        return engine.search_space.to_json()

    async def get_faults(_: Request) -> dict[str, Any]:
        return faults.state().as_dict()

    async def put_faults(request: Request) -> dict[str, Any]:
        try:
            patch = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(422, f"malformed JSON body: {exc}", code="invalid_json") from exc
        try:
            return (await asyncio.to_thread(faults.set, patch)).as_dict()
        except FaultError as exc:
            raise ApiError(422, str(exc), param=exc.param, code="invalid_fault") from exc
        except ConfigBuildError as exc:
            raise ApiError(
                500, str(exc), type_="internal_error", code="config_build_failed"
            ) from exc

    async def delete_faults(_: Request) -> dict[str, Any]:
        return (await asyncio.to_thread(faults.clear)).as_dict()

    app.add_api_route("/admin/faults", admin(get_faults), methods=["GET"])
    app.add_api_route("/admin/faults", admin(put_faults), methods=["PUT"])
    app.add_api_route("/admin/faults", admin(delete_faults), methods=["DELETE"])
    app.add_api_route("/admin/config", admin(get_config), methods=["GET"])
    app.add_api_route("/admin/config", admin(put_config), methods=["PUT"])
    app.add_api_route("/admin/search-space", admin(search_space), methods=["GET"])
    return app
