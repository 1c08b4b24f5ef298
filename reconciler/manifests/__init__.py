"""Desired state: the `BatchJob` manifest schema, its YAML loader and its canonical formatter."""
