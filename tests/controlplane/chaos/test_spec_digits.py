"""Numbers in chaos specs are ASCII digits in range: ``str.isdigit`` also accepts ``"²"``,
which ``int`` then refuses with a ValueError (a 500 at the API, a traceback in the CLI)."""

from __future__ import annotations

import pytest

from controlplane.chaos import parse_fault
from controlplane.chaos import parse_target
from controlplane.domain import ValidationError


@pytest.mark.parametrize("text", ["pid:²", "pid:١٢٣", "pid:99999999999", "netns:cpc-a:⁸⁰"])
def test_targets_with_unicode_or_out_of_range_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_target(text)
    assert info.value.field == "target"


@pytest.mark.parametrize("text", ["delay 10ms limit ²", "cpu-hog ³"])
def test_faults_with_unicode_digits_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_fault(text)


def test_ascii_numbers_still_parse() -> None:
    assert parse_target("pid:4242").pid == 4242
    assert parse_target("netns:cpc-a:8080").port == 8080
