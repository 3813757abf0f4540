"""Flax Linen models, one file per family; every model takes ``train`` explicitly."""
