"""The `racefree` command line: check, explain, show, codes."""
