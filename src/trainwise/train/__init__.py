"""Train stage: the one visible loop, its monitor, early stopping and diagnosis."""
