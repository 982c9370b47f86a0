"""Checks shared by the Ray tests: what the test process and its children listen on."""

from __future__ import annotations

import os
import socket

import psutil

from neurocloud.ray.cluster import LOOPBACK

LOOPBACK_FORMS = (LOOPBACK, "::ffff:127.0.0.1", "::1")


def ray_listening_addresses() -> list[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket that this test process or any
    process it started (Ray's nodes, workers, replicas) listens on."""
    own = [psutil.Process(os.getpid()), *psutil.Process(os.getpid()).children(recursive=True)]
    found = []
    for process in own:
        try:
            connections = process.net_connections(kind="tcp")
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [
            (c.laddr.ip, c.laddr.port, name)
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.family in (socket.AF_INET, socket.AF_INET6)
        ]
    return found


def assert_loopback_only() -> None:
    outside = [s for s in ray_listening_addresses() if s[0] not in LOOPBACK_FORMS]
    assert not outside, f"listening outside 127.0.0.1: {outside}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def upload(client, folder, prefix: str, bucket: str = "models") -> None:
    """Every file under ``folder`` to ``s3://bucket/prefix/...``, model.json last (as a
    careful uploader does: a reader that sees it sees the rest)."""
    from pathlib import Path

    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == "model.json")
    for path in files:
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        client.upload_file(str(path), bucket, key)
