"""Verification engines. This is the only package that imports z3."""
