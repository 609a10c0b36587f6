"""Bad engines (garbage, truncated, HTML, 50 MB, 30 s late) fail their scrape, keep their
last good values, and never delay the healthy engine next to them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from collectors import CollectorHealth
from collectors import EngineScraper
from collectors import FetchError
from collectors import fetch_text
from controlplane.domain import EngineTarget
from controlplane.domain import Sample
from tests.collectors.helpers import serve
from tests.collectors.helpers import text_handler
from tests.collectors.helpers import wait_for

GOOD = (Path(__file__).parents[1] / "fixtures/collectors/vllm/metrics.txt").read_bytes()


class Modes:
    """A server whose answer the test switches between good and each kind of bad."""

    def __init__(self) -> None:
        self.mode = "good"
        self.release = threading.Event()

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "good":
            return text_handler(GOOD)(h)
        if self.mode == "slow":  # answers after 30 s, unless the test ends first
            self.release.wait(30)
            return text_handler(GOOD)(h)
        if self.mode == "html":
            return text_handler(b"<html><body>502 Bad Gateway</body></html>", "text/html")(h)
        if self.mode == "html_as_text":
            return text_handler(b"<html><body>login</body></html>\n")(h)
        if self.mode == "garbage":
            return text_handler(b"\x89PNG\r\n\x1a\n garbage {{{ 1 2 3\n")(h)
        if self.mode == "truncated":
            return text_handler(GOOD[: len(GOOD) // 2 + 7])(h)
        if self.mode == "huge":  # 50 MB, streamed without a Content-Length
            h.send_response(200)
            h.send_header("Content-Type", "text/plain")
            h.end_headers()
            line = b"vllm:num_requests_running 1\n" * 4096
            for _ in range(50 * 1024 * 1024 // len(line)):
                h.wfile.write(line)
            return None
        raise AssertionError(self.mode)


@pytest.fixture
def health() -> CollectorHealth:
    return CollectorHealth(CollectorRegistry())


@pytest.fixture
def two_engines() -> Iterator[tuple[Modes, str, str]]:
    bad = Modes()
    with serve(bad) as bad_url, serve(text_handler(GOOD)) as good_url:
        yield bad, bad_url, good_url
        bad.release.set()


def test_fetch_caps_size_and_time(two_engines: tuple[Modes, str, str]) -> None:
    bad, url, _ = two_engines
    with httpx.Client() as client:
        bad.mode = "huge"
        with pytest.raises(FetchError) as too_large:
            fetch_text(client, f"{url}/metrics", timeout_s=5, max_bytes=1024 * 1024)
        assert too_large.value.reason == "too_large"
        bad.mode = "slow"
        with pytest.raises(FetchError) as late:
            fetch_text(client, f"{url}/metrics", timeout_s=0.3, max_bytes=1024)
        assert late.value.reason == "timeout"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage", "decode"),
        ("truncated", "parse"),
        ("html", "html"),
        ("html_as_text", "parse"),
        ("huge", "too_large"),
        ("slow", "timeout"),
    ],
)
def test_bad_engine_fails_keeps_last_good_and_does_not_delay_others(
    two_engines: tuple[Modes, str, str], health: CollectorHealth, mode: str, reason: str
) -> None:
    bad, bad_url, good_url = two_engines
    offered: list[Sample] = []
    lock = threading.Lock()

    def offer(samples: object) -> None:
        with lock:
            offered.extend(samples)  # type: ignore[call-overload]

    scraper = EngineScraper(
        offer, health=health, interval_s=0.2, timeout_s=0.5, max_bytes=2 * 1024 * 1024
    )
    scraper.set_targets(
        [EngineTarget("bad", "vllm", bad_url), EngineTarget("good", "vllm", good_url)]
    )
    scraper.start()
    try:
        wait_for(lambda: scraper.status("bad").last_success is not None, what="first good scrape")
        good_values = scraper.latest("bad")
        assert good_values
        bad.mode = mode
        wait_for(lambda: scraper.status("bad").failures >= 2, what="failures counted")
        before = scraper.status("good").scrapes
        # While the bad engine keeps failing, the good one keeps its 0.2 s schedule.
        wait_for(lambda: scraper.status("good").scrapes >= before + 3, timeout=5.0)
        status = scraper.status("bad")
        assert status.last_error is not None and status.last_error.startswith(reason)
        assert scraper.latest("bad") == good_values
        assert scraper.status("good").failures == 0
        value = health.registry.get_sample_value(
            "cplane_collector_scrape_failures_total",
            {"collector": "engine", "target": "bad", "reason": reason},
        )
        assert value is not None and value >= 2
    finally:
        bad.release.set()
        scraper.close()


def test_fast_mode_and_target_changes(health: CollectorHealth) -> None:
    with serve(text_handler(GOOD)) as url:
        scraper = EngineScraper(lambda s: None, health=health, interval_s=60, fast_interval_s=0.1)
        scraper.set_targets([EngineTarget("e", "vllm", url)])
        scraper.start()
        try:
            wait_for(lambda: scraper.status("e").scrapes >= 1)
            scraper.set_fast("e")
            wait_for(lambda: scraper.status("e").scrapes >= 4, timeout=5.0, what="fast scrapes")
            scraper.set_targets([])
            assert scraper.engines() == []
        finally:
            scraper.close()


def test_unknown_kind_is_a_counted_failure(health: CollectorHealth) -> None:
    scraper = EngineScraper(lambda s: None, health=health)
    scraper.set_targets([EngineTarget("x", "nope", "http://127.0.0.1:9")])
    status = scraper.scrape_now("x")
    assert status.failures == 1 and status.last_error and status.last_error.startswith("config")
    scraper.close()


def test_a_failing_engine_logs_once_per_state_change_and_counts_the_rest(
    health: CollectorHealth, caplog: pytest.LogCaptureFixture
) -> None:
    bad = Modes()
    caplog.set_level(logging.DEBUG, logger="collectors")
    with serve(bad) as url:
        scraper = EngineScraper(lambda s: None, health=health)
        scraper.set_targets([EngineTarget("e", "vllm", url)])
        try:
            outcomes = ["good", "html", "html", "html", "html", "good", "good", "garbage"]
            for mode in outcomes:
                bad.mode = mode
                scraper.scrape_now("e")
        finally:
            scraper.close()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("collectors")]
    assert len(lines) == 3, lines
    assert "e is down" in lines[0] and "html" in lines[0]
    assert "e is back" in lines[1] and "after 4 failures" in lines[1]
    assert "e is down" in lines[2]
    failures = health.registry.get_sample_value(
        "cplane_collector_scrape_failures_total",
        {"collector": "engine", "target": "e", "reason": "html"},
    )
    assert failures == 4


def test_a_target_down_from_the_start_logs_once_without_url_credentials(
    health: CollectorHealth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="collectors")
    scraper = EngineScraper(lambda s: None, health=health, timeout_s=0.5)
    scraper.set_targets([EngineTarget("e", "vllm", "http://u:pw-secret@127.0.0.1:9")])
    try:
        for _ in range(3):
            scraper.scrape_now("e")
    finally:
        scraper.close()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("collectors")]
    assert len(lines) == 1 and "e is down" in lines[0]
    assert "pw-secret" not in caplog.text
