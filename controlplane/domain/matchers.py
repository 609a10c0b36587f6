"""Label matchers in Alertmanager's syntax: ``name=value``, ``name!=value``, ``name=~regex``,
``name!~regex``; values may be double-quoted (``severity="critical"``).

As in Alertmanager, regular expressions are anchored at both ends (``=~"warn|crit"`` matches
``warn`` but not ``warning``), and a label the alert lacks matches as the empty string, so
``team!=""`` selects alerts that carry a ``team`` label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from controlplane.domain.errors import ValidationError

_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SPLIT = re.compile(r"^\s*([^=!~\s]+)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class MatchOp(StrEnum):
    equal = "="
    not_equal = "!="
    regex = "=~"
    not_regex = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = str(labels.get(self.name, ""))
        if self.op is MatchOp.equal:
            return got == self.value
        if self.op is MatchOp.not_equal:
            return got != self.value
        hit = re.fullmatch(self.value, got) is not None
        return hit if self.op is MatchOp.regex else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op.value}"{escaped}"'


def _unquote(raw: str, text: str, field: str) -> str:
    if not raw.startswith('"'):
        if '"' in raw:
            raise ValidationError(f"matcher {text!r}: stray quote in the value", field=field)
        return raw
    if len(raw) < 2 or not raw.endswith('"'):
        raise ValidationError(f"matcher {text!r}: unterminated quoted value", field=field)
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 == len(body):
                raise ValidationError(f"matcher {text!r}: unterminated quoted value", field=field)
            out.append(body[i + 1])
            i += 2
            continue
        if ch == '"':
            raise ValidationError(f"matcher {text!r}: unescaped quote in the value", field=field)
        out.append(ch)
        i += 1
    return "".join(out)


def parse_matcher(text: str, *, field: str = "matchers") -> Matcher:
    """Parse one matcher.

    Raises:
        ValidationError: naming the matcher and what is wrong with it.
    """
    found = _SPLIT.match(text)
    if found is None:
        raise ValidationError(
            f"matcher {text!r}: expected name=value, name!=value, name=~regex or name!~regex",
            field=field,
        )
    name, op, raw = found.groups()
    if not _LABEL.match(name):
        raise ValidationError(f"matcher {text!r}: {name!r} is not a label name", field=field)
    value = _unquote(raw, text, field)
    matcher = Matcher(name, MatchOp(op), value)
    if matcher.op in (MatchOp.regex, MatchOp.not_regex):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValidationError(
                f"matcher {text!r}: invalid regular expression: {exc}", field=field
            ) from exc
    return matcher


def parse_matchers(texts: Iterable[str], *, field: str = "matchers") -> tuple[Matcher, ...]:
    return tuple(parse_matcher(t, field=field) for t in texts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (no matchers: everything matches)."""
    return all(m.matches(labels) for m in matchers)
