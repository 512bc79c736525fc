"""Data stage: sources, audit, split, tensors."""
