"""Summing one array over a group of Ray workers: the exchange of data-parallel training.

Every worker calls ``allreduce(part)`` once per step with an array of the same shape and
gets back the sum of every worker's part (the same bytes on every worker, summed in rank
order, so the workers' weights stay identical). Two mechanisms:

* :class:`ObjectStoreAllReduce` (``"actor"``): a small Ray actor adds the parts and answers
  the sum; the arrays travel through Ray's object store. Needs nothing beyond Ray core.
* :class:`CollectiveAllReduce` (``"gloo"``): ``ray.util.collective``'s GLOO group, which in
  this Ray is ``torch.distributed``'s gloo (PyTorch must be installed on every node); the
  parts travel worker to worker. Its rendezvous store listens on every interface.

``benchmarks/ray_scale.py`` measures both per step (and the driver reduction they replace).

>>> group = ObjectStoreAllReduce.create(world_size=2)  # doctest: +SKIP
>>> group.member(rank=0)(np.ones(3))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Protocol

import numpy as np

__all__ = ["BACKENDS", "CollectiveAllReduce", "Member", "ObjectStoreAllReduce", "create"]


class Member(Protocol):
    """One worker's end of a group: ``member(part)`` returns the sum over the group."""

    def __call__(self, part: np.ndarray) -> np.ndarray: ...


class _Adder:
    """The actor behind :class:`ObjectStoreAllReduce`: collects one part per rank, answers
    their sum to every rank once all have arrived, then starts the next round."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.parts: dict[int, np.ndarray] = {}
        self.result: asyncio.Future | None = None

    async def add(self, rank: int, part: np.ndarray) -> np.ndarray:
        if self.result is None:
            self.result = asyncio.get_running_loop().create_future()
        result = self.result
        self.parts[rank] = part
        if len(self.parts) == self.world_size:
            total = self.parts[0].copy()
            for r in range(1, self.world_size):
                total += self.parts[r]
            self.parts, self.result = {}, None
            result.set_result(total)
        return await result


class ObjectStoreAllReduce:
    """All-reduce through one actor and Ray's object store: per step each worker sends its
    part and receives the sum (two transfers per worker, as a parameter server's)."""

    def __init__(self, adder: Any) -> None:
        self.adder = adder

    @classmethod
    def create(cls, world_size: int) -> ObjectStoreAllReduce:
        import ray

        actor = ray.remote(num_cpus=0, max_concurrency=max(4, 2 * world_size))(_Adder)
        adder = actor.remote(world_size)
        ray.get(adder.__ray_ready__.remote())
        return cls(adder)

    def member(self, rank: int) -> Member:
        return _ObjectStoreMember(self.adder, rank)

    def close(self) -> None:
        import ray

        ray.kill(self.adder)


class _ObjectStoreMember:
    def __init__(self, adder: Any, rank: int) -> None:
        self.adder, self.rank = adder, rank

    def __call__(self, part: np.ndarray) -> np.ndarray:
        import ray

        return ray.get(self.adder.add.remote(self.rank, part))


class CollectiveAllReduce:
    """All-reduce with ``ray.util.collective`` (GLOO backend: ``torch.distributed``'s gloo),
    in place among the workers; no actor in the middle."""

    def __init__(self, world_size: int, group_name: str) -> None:
        self.world_size, self.group_name = world_size, group_name

    @classmethod
    def create(cls, world_size: int) -> CollectiveAllReduce:
        from ray.util import collective

        if not collective.gloo_available():
            raise ValueError(
                "allreduce: expected 'actor' or an installed gloo backend; received 'gloo', "
                "and ray.util.collective finds no gloo (it needs PyTorch on every node)."
            )
        return cls(world_size, f"neurocloud-{uuid.uuid4().hex[:12]}")

    def member(self, rank: int) -> Member:
        return _CollectiveMember(self.world_size, rank, self.group_name)

    def close(self) -> None:
        """Nothing to stop: each member's group goes with its worker process."""


class _CollectiveMember:
    def __init__(self, world_size: int, rank: int, group_name: str) -> None:
        self.world_size, self.rank, self.group_name = world_size, rank, group_name
        self.joined = False

    def __call__(self, part: np.ndarray) -> np.ndarray:
        from ray.util import collective

        if not self.joined:  # in the worker process, on first use
            collective.init_collective_group(
                self.world_size, self.rank, backend="gloo", group_name=self.group_name
            )
            self.joined = True
        out = np.ascontiguousarray(part)
        collective.allreduce(out, group_name=self.group_name)
        return out


BACKENDS = {"actor": ObjectStoreAllReduce, "gloo": CollectiveAllReduce}


def create(name: str, world_size: int) -> ObjectStoreAllReduce | CollectiveAllReduce:
    """The group named ``name`` (one of :data:`BACKENDS`) for ``world_size`` workers."""
    if name not in BACKENDS:
        raise ValueError(f"allreduce: expected one of {sorted(BACKENDS)}; received {name!r}.")
    return BACKENDS[name].create(world_size)
