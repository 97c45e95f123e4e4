"""Fixtures of the fault tests: the service on PostgreSQL and Redis of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKEND
from tests.faults.services import missing_services
from tests.faults.stack import Stack, own_stack

OWN_SERVICES_ONLY = (
    "fault injection stops and starts its own PostgreSQL and Redis: it runs with "
    "SUBAN_TEST_BACKEND=postgres (the embedded backend has neither)"
)


def skip_unless_own_services() -> None:
    if BACKEND != "postgres":
        pytest.skip(OWN_SERVICES_ONLY)
    reason = missing_services()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    skip_unless_own_services()
    with own_stack(tmp_path) as built:
        yield built
