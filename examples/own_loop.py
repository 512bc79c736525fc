"""A plain PyTorch training loop with trainwise's monitoring: the added lines are marked `# +`.

    python examples/own_loop.py [RUN_DIR]        # default runs/own_loop

Writes RUN_DIR/history.jsonl, findings.json, tensorboard/ (`tensorboard --logdir RUN_DIR`) and
report.html; prints each warning once, when the diagnosis after an epoch (or at the end) first
finds it (a NaN loss within `log_every` steps), and a closing line with the verdict and the
report's path. It opens RUN_DIR with overwrite=True, so a rerun replaces the last run; without
it the Monitor refuses to touch an earlier run, and resume=True continues one when your loop
resumes from its own checkpoint (steps and epochs count on). AdamW decays the weight matrices
only (trainwise.param_groups): decay on biases and normalisation weights is a warning.
`monitor.evaluate` returns the epoch's row (val_loss, val_accuracy, ...) if you want to print
it. The data are scikit-learn's 8x8 digits (bundled, no download); the loader also yields each
batch's sample indices, so a gradient spike's finding names the samples to look at.
"""

import sys

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainwise

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data / 16.0, dtype=torch.float32)  # (1797, 64) pixels in [0, 1]
y = torch.tensor(digits.target)
order = torch.randperm(len(y))
train_idx, val_idx = order[:1400], order[1400:]
train_loader = DataLoader(TensorDataset(x[train_idx], y[train_idx], train_idx), batch_size=64,
                          shuffle=True)
val_loader = DataLoader(TensorDataset(x[val_idx], y[val_idx]), batch_size=512)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.AdamW(trainwise.param_groups(model, weight_decay=0.01), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()

run_dir = sys.argv[1] if len(sys.argv) > 1 else "runs/own_loop"
with trainwise.Monitor(run_dir, overwrite=True) as monitor:  # +
    for _ in range(15):  # epochs
        model.train()
        for xb, yb, indices in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            monitor.step(loss, model, optimizer, batch_indices=indices)  # +
            optimizer.step()
        monitor.evaluate(model, val_loader, loss_fn)  # +
        if monitor.should_stop:  # + an error (NaN loss, divergence): more epochs cannot help
            break
