"""Executors: the threads that run prefill and decode steps for a batch of sequences.

One configuration is served by ``streams`` executors sharing a model copy and the waiting
queue, each with its own KV cache and running batch. On CUDA every executor issues its
work on its own ``torch.cuda.Stream`` so kernels from different executors can overlap. On
CPU an executor is a thread with its own intra-op thread budget: PyTorch's OpenMP thread
count is per calling thread (captured when the thread first runs a parallel op), so each
executor thread calls ``torch.set_num_threads(intra_op_threads(cores, streams))`` before
its first op, instead of every thread spawning a full-width OpenMP team. One core is left
to the HTTP event loop: OpenMP teams spin at barriers, and a team whose thread is
descheduled by the front end (or anything else) slows down several-fold, which we measured
on two cores (see docs/engine.md). More streams than cores still oversubscribes, as it
should: the tuner must be able to see that region.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from engine.batcher import GenerationRequest
from engine.batcher import RequestQueue
from engine.batcher import TokenLogprob
from engine.config import EngineConfig
from engine.metrics import EngineMetrics
from engine.model import CausalLM
from engine.model import KVCache
from engine.precision import cache_dtype
from engine.tokenizer import EOS_ID

log = logging.getLogger(__name__)


def intra_op_threads(cores: int, streams: int) -> int:
    """CPU threads per executor: the cores minus one for the front end, split evenly."""
    return max(1, (cores - 1) // streams)


@dataclass(eq=False)
class _Sequence:
    request: GenerationRequest
    position: int  # where the next token's key/value goes
    last_token: int


class Executor:
    def __init__(
        self,
        index: int,
        model: CausalLM,
        config: EngineConfig,
        queue: RequestQueue,
        metrics: EngineMetrics,
        threads: int,
    ) -> None:
        self.index = index
        self.model = model
        self.config = config
        self.queue = queue
        self.metrics = metrics
        self.threads = threads
        self.device = model.device
        self.cache = KVCache(
            model.spec, config.max_batch_size, cache_dtype(config.precision), self.device
        )
        self.stream: torch.cuda.Stream | None = None
        if self.device.type == "cuda":
            self.stream = torch.cuda.Stream(self.device)
            # Weights and caches were written on the default stream.
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        self.running: list[_Sequence] = []
        self._admitting: list[GenerationRequest] = []
        self._draining = False
        self._thread = threading.Thread(
            target=self._run, name=f"executor-{config.precision}-{index}", daemon=True
        )

    @property
    def draining(self) -> bool:
        return self._draining

    def warm_up(self) -> None:
        """Runs one prefill and decode so a broken config fails before it is switched in."""
        with self._stream_context(), torch.inference_mode():
            self.model.prefill_one([1, 2, 3], self.cache, 0)
            tokens = torch.tensor([4], device=self.device)
            self.model.decode(tokens, torch.tensor([3], device=self.device), self.cache)
        if self.stream is not None:
            self.stream.synchronize()

    def start(self) -> None:
        self._thread.start()

    def drain(self) -> None:
        self._draining = True

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @contextlib.contextmanager
    def _stream_context(self) -> Iterator[None]:
        if self.stream is None:
            yield
        else:
            with torch.cuda.stream(self.stream):
                yield

    def _run(self) -> None:
        if self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        with self._stream_context(), torch.inference_mode():
            while True:
                if self._draining and not self.running:
                    return
                try:
                    self._step()
                except Exception as exc:  # a failed step must not kill the server
                    log.exception("executor %d step failed", self.index)
                    self._fail_running(f"internal error: {exc}")

    def _step(self) -> None:
        free = self.config.max_batch_size - len(self.running)
        new = self.queue.take(
            free,
            block=not self.running,
            delay_s=self.config.max_queue_delay_ms / 1000.0,
            stopping=lambda: self._draining,
        )
        self._admitting = new
        self._admit([r for r in new if not self._abort_if_cancelled(r)])
        self._admitting = []
        self._drop_cancelled()
        if self.running:
            self._decode()

    def _abort_if_cancelled(self, request: GenerationRequest) -> bool:
        if request.cancelled:
            self._finish(request, "abort")
        return request.cancelled

    def _admit(self, requests: list[GenerationRequest]) -> None:
        """Prefills all newly admitted prompts in one padded batch (one GEMM per layer
        instead of one per prompt), then adds them to the running batch."""
        if not requests:
            return
        now = time.perf_counter()
        for request in requests:
            request.admitted_at = now
            self.metrics.queue_time.observe(now - request.arrival)
            self.metrics.prompt_tokens.inc(len(request.prompt_ids))
        width = max(len(r.prompt_ids) for r in requests)
        padded = [r.prompt_ids + [0] * (width - len(r.prompt_ids)) for r in requests]
        ids = torch.tensor(padded, device=self.device)
        lengths = torch.tensor([len(r.prompt_ids) for r in requests], device=self.device)
        first_slot = len(self.running)
        logits = self.model.prefill(ids, lengths, self.cache, first_slot)
        tokens: list[int] = torch.argmax(logits, dim=-1).tolist()
        entries = logprob_entries(logits, tokens, [r.logprobs for r in requests])
        for request in requests:
            if request.prompt_logprobs:
                request.prompt_token_logprobs = self._score_prompt(request)
        finished: list[int] = []
        for offset, (request, token) in enumerate(zip(requests, tokens, strict=True)):
            sequence = _Sequence(request, position=len(request.prompt_ids), last_token=token)
            self.running.append(sequence)
            if self._emit(sequence, token, entries[offset]):
                finished.append(first_slot + offset)
        for slot in reversed(finished):
            self._remove(slot)

    def _decode(self) -> None:
        self.metrics.batch_size.observe(len(self.running))
        tokens = torch.tensor([s.last_token for s in self.running], device=self.device)
        positions = torch.tensor([s.position for s in self.running], device=self.device)
        logits = self.model.decode(tokens, positions, self.cache)
        next_tokens: list[int] = torch.argmax(logits, dim=-1).tolist()
        entries = logprob_entries(logits, next_tokens, [s.request.logprobs for s in self.running])
        finished: list[int] = []
        for slot, (sequence, token) in enumerate(zip(self.running, next_tokens, strict=True)):
            sequence.position += 1
            sequence.last_token = token
            if self._emit(sequence, token, entries[slot]):
                finished.append(slot)
        for slot in reversed(finished):
            self._remove(slot)

    def _score_prompt(self, request: GenerationRequest) -> list[TokenLogprob]:
        """Every prompt position scored by one full causal pass, as a scoring client
        (``echo`` + ``logprobs``) expects; position 0 has no context and is left out."""
        ids = request.prompt_ids
        logits = self.model(torch.tensor([ids], device=self.device))[0, :-1]
        entries = logprob_entries(logits, ids[1:], [request.logprobs] * (len(ids) - 1))
        return [e for e in entries if e is not None]

    def _emit(self, sequence: _Sequence, token: int, logprob: TokenLogprob | None) -> bool:
        """Hands one token to the request; True when the sequence is finished."""
        request = sequence.request
        if logprob is not None:
            request.generated_logprobs.append(logprob)
        now = time.perf_counter()
        if request.first_token_at is None:
            request.first_token_at = now
            self.metrics.ttft.observe(now - request.arrival)
        elif request.last_token_at is not None:
            self.metrics.itl.observe(now - request.last_token_at)
        request.last_token_at = now
        request.generated.append(token)
        self.metrics.generation_tokens.inc()
        if request.stream_tokens:
            request.sink("token", token)
        if token == EOS_ID and not request.ignore_eos:
            self._finish(request, "stop")
            return True
        if len(request.generated) >= request.max_tokens:
            self._finish(request, "length")
            return True
        return False

    def _finish(self, request: GenerationRequest, reason: str) -> None:
        request.finished_reason = reason
        self.metrics.e2e.observe(time.perf_counter() - request.arrival)
        self.metrics.finished(reason)
        request.sink("done", reason)

    def _remove(self, slot: int) -> None:
        """Frees ``slot`` by moving the last sequence into it, keeping slots contiguous."""
        last = len(self.running) - 1
        if slot != last:
            moved = self.running[last]
            self.cache.move(last, slot, moved.position)
            self.running[slot] = moved
        self.running.pop()

    def _drop_cancelled(self) -> None:
        for slot in reversed(range(len(self.running))):
            request = self.running[slot].request
            if request.cancelled:
                self._finish(request, "abort")
                self._remove(slot)

    def _fail_running(self, message: str) -> None:
        requests = [s.request for s in self.running] + self._admitting
        for request in requests:
            if request.finished_reason is None:
                request.finished_reason = "error"
                self.metrics.finished("error")
                request.sink("error", message)
        self.running.clear()
        self._admitting = []


def logprob_entries(
    logits: torch.Tensor, tokens: list[int], wanted: list[int | None]
) -> list[TokenLogprob | None]:
    """Log-probabilities of ``tokens`` (one per row of ``logits``) and each row's top
    ``wanted[i]`` alternatives; ``None`` for rows that asked for none. Costs nothing when no
    row asked: the softmax is only computed for a batch that needs it."""
    rows = [i for i, w in enumerate(wanted) if w is not None]
    if not rows:
        return [None] * len(wanted)
    picked = logits[rows].float()
    logp = torch.log_softmax(picked, dim=-1)
    chosen = logp.gather(1, torch.tensor([tokens[i] for i in rows], device=logp.device)[:, None])
    k = max(wanted[i] or 0 for i in rows)
    top_v, top_i = torch.topk(logp, k, dim=-1) if k > 0 else (logp[:, :0], logp[:, :0].long())
    chosen_l = chosen[:, 0].tolist()
    top_vl, top_il = top_v.tolist(), top_i.tolist()
    out: list[TokenLogprob | None] = [None] * len(wanted)
    for j, i in enumerate(rows):
        n = wanted[i] or 0
        top = tuple(zip(top_il[j][:n], top_vl[j][:n], strict=True))
        out[i] = TokenLogprob(tokens[i], chosen_l[j], top)
    return out


class ExecutorPool:
    """The executors of one configuration; built and warmed up before it is switched in."""

    def __init__(
        self,
        model: CausalLM,
        config: EngineConfig,
        queue: RequestQueue,
        metrics: EngineMetrics,
        cores: int,
    ) -> None:
        self.config = config
        threads = intra_op_threads(cores, config.streams)
        self.executors = [
            Executor(i, model, config, queue, metrics, threads) for i in range(config.streams)
        ]
        self._queue = queue

    def warm_up(self) -> None:
        for executor in self.executors:
            executor.warm_up()

    def start(self) -> None:
        for executor in self.executors:
            executor.start()

    def drain(self) -> None:
        """Stops taking new work; running sequences finish on the old executors."""
        for executor in self.executors:
            executor.drain()
        self._queue.wake_all()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        for executor in self.executors:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ok = executor.join(left) and ok
        return ok

    def running_count(self) -> int:
        return sum(len(e.running) for e in self.executors)
