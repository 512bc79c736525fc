"""METHOD §4's large-batch thresholds, in a module light enough for the Monitor: the tune
package they belong to imports the fit loop and with it Lightning, whose import makes every
Adam step on the CPU load NVML (tests/test_monitor.py: the Monitor never imports it).
tune/batch_size.py and tune/large_batch.py take them from here."""

MAX_MICRO_BATCH = 256  # above it: gradient accumulation (batch-norm statistics stay sane)
WARMUP_SHARE = 0.05  # of all steps: the linear warmup of constant/cosine schedules at a large
# effective batch (Goyal et al. 2017 warm up over 5 of 90 epochs)
MIN_WARMUP_STEPS = 10  # ...but never fewer steps than this (the first step then at lr/10, a
# decade below the peak) where the run allows: 5% of a 28-step run (MNIST-1D at batch 512,
# 4 epochs) was 1 step, whose LinearLR starts at the full lr, i.e. no warmup (audit s12 L8)
