"""Model stage: baselines sized from the data, init policy, shape trace, optimizer groups."""
