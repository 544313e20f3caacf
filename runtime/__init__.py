"""Run-time code imported by trainers and adapters.

- ``base``: the hand-written half of every generated machine (lock, policies, monitor,
  recorder, snapshot);
- ``generated``: the checked-in output of ``racefree gen`` for the bundled specs;
- ``model_harness``: what the generated Hypothesis model tests share (needs hypothesis);
- ``gap_ratio``: the rlix planner arithmetic, property-tested against gpu_alloc's contract.

This package must never import z3 (tests/test_contracts.py).
"""
