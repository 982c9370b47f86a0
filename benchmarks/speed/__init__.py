"""The parts of ``benchmarks/train_speed.py``: the workloads and training systems with their
lower bounds (:mod:`speed.training`), the inference systems and theirs
(:mod:`speed.inference`), and the worker processes that time them (:mod:`speed.harness`)."""
