"""API fuzz pass: schemathesis draws requests from the bridge's own OpenAPI description, valid
and invalid, against a running bridge with a real lap timer and recorder behind it. No
request may get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from modules.web_bridge.devstack import DevStack, Endpoint

EXAMPLES = 15  # per operation and mode: bounded, the suite stays quick


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    directory: Path = tmp_path_factory.mktemp("web_bridge_fuzz")
    (directory / "recordings").mkdir()
    with DevStack(directory) as dev:
        lap_timer = dev.module("lap_timer", "--db", str(directory / "laps.sqlite3"))
        recorder = dev.module("recorder", "--save-path", str(directory / "recordings"))
        yield dev.bridge(lap_timer, recorder)


def test_no_server_errors(bridge: Endpoint) -> None:
    schema = schemathesis.openapi.from_url(bridge.url + "openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/laps", "/api/laps/{lap_id}", "/api/track"}
    failures: list[str] = []
    calls: list[int] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case) -> None:
                response = case.call(base_url=bridge.url.rstrip("/"), timeout=10)
                calls.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} query={case.query} "
                        f"body={case.body!r:.200} -> {response.status_code} {response.text:.300}"
                    )

            try:
                call()
            except Unsatisfiable:
                # Nothing to get wrong (an operation without parameters): no negative cases.
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert not failures, "\n".join(failures[:20])
    assert len(calls) >= 5 * len(operations)
    assert {200, 404, 422} <= set(calls)  # it reached the modules and their refusals
    # The bridge is still whole after all of it.
    assert httpx.get(bridge.url + "api/session", timeout=5).status_code == 200
