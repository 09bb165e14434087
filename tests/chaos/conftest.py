"""Chaos fixtures: a private PostgreSQL cluster these tests may stop and restart at will."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.cluster import PrivateCluster


@pytest.fixture(scope="session")
def private_cluster() -> Iterator[PrivateCluster]:
    """Started once per pytest process, destroyed at the end. Never the shared 54329 cluster."""
    cluster = PrivateCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def ensure_up(private_cluster: PrivateCluster) -> Iterator[PrivateCluster]:
    """The cluster, running at the start of the test and again after it (whatever it did)."""
    if not private_cluster.accepting():
        private_cluster.start()
    yield private_cluster
    if not private_cluster.accepting():
        private_cluster.start()
