"""neurocloud on a Ray cluster: serve, score, tune and train beyond one machine.

Needs the extra ``pip install 'neurocloud[ray]'``; ``import neurocloud`` never imports Ray.

- :func:`deployment`: a Ray Serve application running ``neurocloud serve``'s app in replicas.
- :func:`predict_batches` and :class:`BatchPredictor`: score a Ray Data ``Dataset``.
- :func:`tune` and :class:`TuneReport`: Ray Tune over an estimator, ASHA stopping per epoch.
- :func:`fit`: data-parallel training of one ``Sequential`` on Ray workers.
- :func:`connect` and :func:`local_cluster`: join a cluster, or start one on 127.0.0.1.

Model paths are a folder every node sees, or a URI (``s3://bucket/models``) that each
node copies (:mod:`neurocloud.ray.uri`).
"""

from __future__ import annotations

from neurocloud.ray.cluster import connect, local_cluster
from neurocloud.ray.data import BatchPredictor, predict_batches
from neurocloud.ray.serving import deployment
from neurocloud.ray.training import fit
from neurocloud.ray.tuning import SearchResult, TuneReport, tune

__all__ = [
    "BatchPredictor",
    "SearchResult",
    "TuneReport",
    "connect",
    "deployment",
    "fit",
    "local_cluster",
    "predict_batches",
    "tune",
]
