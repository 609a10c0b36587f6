"""Alertmanager-style label matchers: the four operators, quoting, anchored regexes, absent
labels as empty, and parse errors that name the matcher."""

from __future__ import annotations

import pytest

from controlplane.domain import ValidationError
from controlplane.domain.matchers import MatchOp
from controlplane.domain.matchers import matches_all
from controlplane.domain.matchers import parse_matcher
from controlplane.domain.matchers import parse_matchers

LABELS = {"alertname": "EngineHighP99Latency", "severity": "critical", "engine": "llm-a"}


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("severity=critical", True),
        ('severity="critical"', True),
        ("severity!=critical", False),
        ("severity=~crit|warn", False),
        ("severity=~crit.*|warn", True),
        ('engine!~"llm-.*"', False),
        ('team=""', True),
        ('team!=""', False),
        ("alertname = EngineHighP99Latency", True),
    ],
)
def test_operators_match_like_alertmanager(text: str, hit: bool) -> None:
    assert parse_matcher(text).matches(LABELS) is hit


def test_quoted_values_keep_escapes_and_round_trip() -> None:
    m = parse_matcher(r'summary="say \"hi\", ok"')
    assert m.op is MatchOp.equal and m.value == 'say "hi", ok'
    assert parse_matcher(str(m)) == m


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("severity", "expected name=value"),
        ("9bad=x", "not a label name"),
        ('severity="critical', "unterminated"),
        ('severity=cri"tical', "stray quote"),
        ("severity=~(crit", "invalid regular expression"),
    ],
)
def test_parse_errors_name_the_matcher(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_matchers(["engine=x", text], field="routes[0].matchers")
    assert repr(text) in str(err.value) and reason in str(err.value)
    assert err.value.field == "routes[0].matchers"


def test_all_must_match_and_none_matches_everything() -> None:
    assert matches_all([], LABELS)
    assert matches_all(parse_matchers(["severity=critical", "engine=~llm-.*"]), LABELS)
    assert not matches_all(parse_matchers(["severity=critical", "engine=llm-b"]), LABELS)
