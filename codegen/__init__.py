"""Code generation from the IR (typed Python runtimes, Hypothesis machines).

Not built yet: it is the subject of a later issue ("Typed Python runtimes
generated from specs"). The package exists so the layout of DESIGN §1 holds and
the import-contract tests cover it from the start.
"""
