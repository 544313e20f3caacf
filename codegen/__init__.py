"""Code generation from the IR: typed Python runtimes (``racefree gen``), Hypothesis model
machines, control-state diagrams, and machines at a deployment's sizes (``instance``)."""
