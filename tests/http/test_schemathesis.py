"""Generated requests against the app's own OpenAPI document: whatever comes in, never a 5xx.

Schemathesis reads ``/openapi.json`` from the ASGI app and sends, per operation, a bounded
number of generated requests (valid and invalid bodies, paths, queries and headers) with the
office's token (most routes let it in) and the administrator's (the registry's routes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from tests.fakes import FakeClock
from tests.http.conftest import World, make_world

EXAMPLES = 12


@pytest.fixture
def fuzzed(tmp_path: Path, clock: FakeClock) -> Iterator[World]:
    """The app on a SQLite file with the tiny county and an open case."""
    made = make_world(str(tmp_path / "fuzz.sqlite3"), tmp_path, clock)
    made.county.open_case()
    yield made
    made.client.close()
    made.rt.close()


@pytest.mark.parametrize(
    ("mode", "who"),
    [
        (GenerationMode.POSITIVE, "supervisor"),
        (GenerationMode.POSITIVE, "admin"),
        (GenerationMode.NEGATIVE, "supervisor"),
    ],
    ids=["valid-as-office", "valid-as-admin", "invalid-as-office"],
)
def test_no_generated_request_gets_a_server_error(fuzzed: World, mode: GenerationMode, who: str) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    headers = fuzzed.headers(who)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 30

    exercised = 0
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def no_server_error(case: Any) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            no_server_error()
        except Unsatisfiable:  # nothing of this operation can be made invalid (a GET without parameters)
            continue
        exercised += 1
    assert exercised > 20
