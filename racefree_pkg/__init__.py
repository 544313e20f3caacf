"""racefree: coordination protocols of distributed RL training as proven state machines.

The top-level folders of the repository (spec/, verification/, codegen/, runtime/,
cli/) are mapped to sub-packages of this one namespace by pyproject.toml.
"""

__version__ = "0.1.0"
