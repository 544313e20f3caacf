"""Runtime adapters and generated state machines (Ray, UCXX, filesystem).

Not built yet: later issues add the generated runtime base module and the
adapters. This package must never import z3 (tests/test_contracts.py).
"""
