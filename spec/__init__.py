"""The spec language: grammar, parser, IR, type checker, printer and reference interpreter.

This package is the bottom of the dependency graph: it imports nothing else of racefree.
"""
