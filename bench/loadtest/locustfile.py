"""Locust's side of the cross-check: the same request the load test sends (a streamed
completion of a generated prompt, fixed output length), from closed-loop users with no
think time. Run by ``bench/loadtest/locust_crosscheck.py``; settings come from the
environment it sets."""

from __future__ import annotations

import os

from locust import FastHttpUser
from locust import task

MODEL = os.environ.get("XCHECK_MODEL", "tiny")
PROMPT_LEN = int(os.environ.get("XCHECK_PROMPT_LEN", "16"))
MAX_TOKENS = int(os.environ.get("XCHECK_MAX_TOKENS", "8"))
ALPHABET = "abcdefghijklmnopqrstuvwxyz "


class Completer(FastHttpUser):
    # No wait_time: each user sends its next request when the last returns (closed loop).
    connection_timeout = 30.0
    network_timeout = 60.0

    def on_start(self) -> None:
        self.sent = 0

    @task
    def complete(self) -> None:
        n = self.sent
        self.sent += 1
        prompt = "".join(ALPHABET[(n * 7 + i) % len(ALPHABET)] for i in range(PROMPT_LEN))
        body = {"model": MODEL, "prompt": prompt, "max_tokens": MAX_TOKENS, "stream": True,
                "stream_options": {"include_usage": True}, "ignore_eos": True}  # fmt: skip
        with self.client.post("/v1/completions", json=body, catch_response=True) as response:
            if response.status_code != 200 or b"[DONE]" not in (response.content or b""):
                response.failure(f"HTTP {response.status_code}")
