"""preflight: healthy setups pass clean; each deliberately broken one is caught by its code."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainwise.checks import preflight
from trainwise.checks._common import default_optimizer
from trainwise.checks.data_checks import check_data
from trainwise.checks.initial import check_at_init, check_loss_at_init
from trainwise.checks.learning import _inputs_verdict, _overfit_verdict, loss_floor
from trainwise.findings import Finding, Severity, warning
from trainwise.model.baselines import cnn1d, loss_function, mlp
from trainwise.model.init import init_weights

CE = nn.CrossEntropyLoss()


def _problems(findings: list[Finding]) -> list[str]:
    return [f"{f.severity.value}:{f.code}" for f in findings if f.severity is not Severity.INFO]


def sequences(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 40) noise plus a sine whose frequency is the class: learnable, not trivial."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (n,), generator=gen)
    t = torch.arange(40)
    x = torch.randn(n, 1, 40, generator=gen) + 1.5 * torch.sin(t * (y[:, None, None] + 1) * 0.25)
    return x, y


def net(width: int = 32, outputs: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, outputs))


def test_healthy_mlp_on_blobs_passes(blobs) -> None:
    x, y = blobs
    findings = preflight(mlp(8, 3), loss_function("classification"), x, y,
                         task="classification", num_classes=3)
    assert _problems(findings) == []
    codes = {f.code for f in findings}
    assert {"loss_at_init_ok", "gradient_flow_ok", "overfit_batch_ok", "inputs_used",
            "smoke_cycle_ok"} <= codes
    assert all(f.stage == "check" and f.evidence for f in findings)


@pytest.mark.parametrize("policy_init", [False, True])
def test_healthy_cnn1d_on_sequences_passes(policy_init: bool) -> None:
    x, y = sequences()
    torch.manual_seed(1)
    model = cnn1d(1, 10)
    if policy_init:
        init_weights(model, generator=torch.Generator().manual_seed(0))
    findings = preflight(model, loss_function("classification"), x, y,
                         task="classification", num_classes=10)
    assert _problems(findings) == []


def test_healthy_regression_passes(blobs) -> None:
    x, _ = blobs
    y = x @ torch.linspace(-1, 1, 8) / 4
    findings = preflight(mlp(8, 1), loss_function("regression"), x, y,
                         task="regression", num_classes=0)
    assert _problems(findings) == []
    assert "regression_output_squeezed" in {f.code for f in findings}


def test_callers_model_modes_and_rng_untouched(blobs) -> None:
    x, y = blobs
    model = mlp(8, 3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    first = preflight(model, CE, x, y, task="classification", num_classes=3, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    second = preflight(model, CE, x, y, task="classification", num_classes=3, seed=5)
    assert [f.to_dict() for f in first] == [f.to_dict() for f in second]


class Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 32), nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)).detach())  # a never learns


class ZeroesInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 32), nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x * 0)))


class MixesSamples(nn.Module):
    """x.t().reshape(B, F): every shape is right, every row is a blend of samples."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x.t().reshape(len(x), 8))


def frozen() -> nn.Module:
    return net().requires_grad_(False)


def dead_relus() -> nn.Module:
    model = net()
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(-layer.weight.abs())
                layer.bias.fill_(-10.0)
    return model


def with_nan(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[5, 3] = float("nan")
    return x


def custom_ce(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output, target)  # a plain function: no type to recognise


Case = tuple[Callable[[], nn.Module], object, Callable, Callable, str | set[str]]
CASES: dict[str, Case] = {
    # name: (model, loss, x -> x, y -> y, expected code)
    "labels 1..C": (net, CE, lambda x: x, lambda y: y + 1, "labels_out_of_range"),
    "float labels": (net, CE, lambda x: x, lambda y: y.float(), "labels_wrong_dtype"),
    "softmax before CE": (lambda: nn.Sequential(net(), nn.Softmax(1)), CE, lambda x: x,
                          lambda y: y, "softmax_before_loss"),
    "softmax before a CE function": (lambda: nn.Sequential(net(), nn.Softmax(1)), custom_ce,
                                     lambda x: x, lambda y: y, "overfit_batch_failed"),
    "all params frozen": (frozen, CE, lambda x: x, lambda y: y, "no_trainable_params"),
    "tensor detached in forward": (Detached, CE, lambda x: x, lambda y: y,
                                   "gradient_missing"),
    "inputs zeroed": (net, CE, torch.zeros_like, lambda y: y, "inputs_constant"),
    "inputs zeroed in forward": (ZeroesInputs, CE, lambda x: x, lambda y: y,
                                 "inputs_ignored"),
    "NaN in inputs": (net, CE, with_nan, lambda y: y, "inputs_not_finite"),
    "dead ReLU init": (dead_relus, CE, lambda x: x, lambda y: y,
                       {"dead_relu", "gradient_missing", "inputs_ignored"}),
    "MSE on class indices": (net, nn.MSELoss(), lambda x: x, lambda y: y,
                             "loss_task_mismatch"),
    "inputs scaled 1000x": (net, CE, lambda x: x * 1000, lambda y: y,
                            {"inputs_not_normalised", "loss_at_init_off"}),
    "logits width": (lambda: net(outputs=4), CE, lambda x: x, lambda y: y,
                     "logits_width_mismatch"),
    "view mixes samples": (MixesSamples, CE, lambda x: x, lambda y: y, "batch_mixing"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_setup_caught(name: str, blobs) -> None:
    make_model, loss_fn, edit_x, edit_y, expected = CASES[name]
    x, y = blobs
    findings = preflight(make_model(), loss_fn, edit_x(x), edit_y(y),
                         task="classification", num_classes=3)
    expected = {expected} if isinstance(expected, str) else expected
    flagged = {f.code: f for f in findings if f.severity is not Severity.INFO}
    assert expected <= set(flagged), _problems(findings)
    assert all("revisit" in flagged[code].fix for code in expected)
    if "loss_at_init_off" in expected:  # no BatchNorm: 1000x inputs give 1000x logits
        assert flagged["loss_at_init_off"].evidence["ratio"] > 10


def test_a_float64_model_is_told_model_float_and_float64_inputs_x_to_float32(blobs) -> None:
    """Reverify s8 N4: a float64 model was told to convert its inputs to float64."""
    x, y = blobs
    [model_side] = [f for f in preflight(net().double(), CE, x, y, task="classification",
                                         num_classes=3) if f.code == "inputs_wrong_dtype"]
    assert "model.float()" in model_side.fix and "x.to(torch.float64)" not in model_side.fix
    [input_side] = [f for f in preflight(net(), CE, x.double(), y, task="classification",
                                         num_classes=3) if f.code == "inputs_wrong_dtype"]
    assert "x.to(torch.float32)" in input_side.fix


def test_regression_broadcast_and_offset_targets(blobs) -> None:
    x, _ = blobs
    y = x[:, 0].clone()
    column = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    broadcast = preflight(column, nn.MSELoss(), x, y, task="regression", num_classes=0)
    assert _problems(broadcast) == ["error:loss_broadcast"]
    # Targets around 1000: the loss at init is ~1e6 x their variance (the pure check alone:
    # the full preflight would also spend 300 steps failing to overfit).
    model, offset = mlp(8, 1).train(), y + 1000
    with torch.no_grad():
        loss = float(loss_function("regression")(model(x), offset))
    (high,) = check_loss_at_init(loss, offset, "regression", 0)
    assert high.code == "loss_at_init_off" and high.evidence["direction"] == "high"
    assert "standardise the targets" in high.fix


def test_loss_at_init_far_below_label_entropy_suggests_leakage() -> None:
    y = torch.arange(300) % 3
    (low,) = check_loss_at_init(0.2, y, "classification", 3)
    assert (low.code, low.evidence["direction"]) == ("loss_at_init_off", "low")
    (ok,) = check_loss_at_init(1.2, y, "classification", 3)
    assert ok.code == "loss_at_init_ok"


@pytest.mark.parametrize(("loss", "task"), [(0.2, "classification"), (0.01, "regression")])
def test_a_too_good_loss_at_init_names_an_already_trained_module_first(loss, task) -> None:
    # a notebook cell run twice passes the module the first run trained in place: its loss
    # at init is 0.063 where H = 2.3, and no label leaks (user audit s16 N3)
    y = torch.arange(300) % 3 if task == "classification" else torch.arange(300.0) / 100
    (low,) = check_loss_at_init(loss, y, task, 3 if task == "classification" else 0)
    assert low.code == "loss_at_init_off" and low.evidence["direction"] == "low"
    trained, leak = low.fix.find("trained already"), low.fix.find("leaking into")
    assert 0 <= trained < leak and "build it again" in low.fix


def test_tiny_inputs_make_first_layer_gradient_vanish(blobs) -> None:
    x, y = blobs
    findings = check_at_init(net(), CE, x * 1e-7, y, task="classification", num_classes=3,
                             make_optimizer=default_optimizer)
    vanishing = next(f for f in findings if f.code == "gradient_vanishing")
    assert list(vanishing.evidence["grad_norms"]) == ["0.weight"]
    healthy = check_at_init(net(), CE, x, y, task="classification", num_classes=3,
                            make_optimizer=default_optimizer)
    assert _problems(healthy) == []
    scaled = check_data(net(), x * 1e-7, y, "classification", 3)
    assert _problems(scaled) == ["warning:inputs_not_normalised"]


def _deep_sigmoid(depth: int = 12) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(8 if i == 0 else 32, 32), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(32, 3))


def test_deep_sigmoid_stack_vanishes_in_front_and_does_not_explode_at_the_output(blobs) -> None:
    """Norms decay ~7x per sigmoid layer from the output back; the median has vanished too,
    so a median-relative rule called the healthy output layer 'exploding' and missed most of
    the vanishing ones (audit s8 M6)."""
    x, y = blobs
    reference = _deep_sigmoid()
    CE(reference(x[:256]), y[:256]).backward()
    norms = {n: float(p.grad.norm()) for n, p in reference.named_parameters() if p.ndim == 2}
    assert norms["24.weight"] > 0.01 and norms["10.weight"] < 1e-6  # the premise
    findings = check_at_init(_deep_sigmoid(), CE, x[:256], y[:256], task="classification",
                             num_classes=3, make_optimizer=default_optimizer)
    codes = {f.code for f in findings}
    assert "gradient_exploding" not in codes
    vanishing = next(f for f in findings if f.code == "gradient_vanishing")
    assert {n for n, v in norms.items() if v < 1e-6} <= set(vanishing.evidence["grad_norms"])
    assert "24.weight" not in vanishing.evidence["grad_norms"]


def test_two_layer_model_gets_a_gradient_verdict(blobs) -> None:
    """Fewer than 3 weight matrices: no median to compare with, but the check still runs and
    says so; absolute size still catches an exploding init (audit s8 M13)."""
    x, y = blobs
    torch.manual_seed(0)
    small = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    findings = check_at_init(small, CE, x, y, task="classification", num_classes=3,
                             make_optimizer=default_optimizer)
    ok = next(f for f in findings if f.code == "gradient_flow_ok")
    assert ok.evidence["relative_to_median"] is False and len(ok.evidence["grad_norms"]) == 2
    with torch.no_grad():
        for p in small.parameters():
            p.normal_(0, 10.0, generator=torch.Generator().manual_seed(1))
    findings = check_at_init(small, CE, x, y, task="classification", num_classes=3,
                             make_optimizer=default_optimizer)
    assert "gradient_exploding" in {f.code for f in findings}


def _curve(start: float, floor: float, steps: int = 300) -> list[float]:
    """Exponential approach to `floor`, flat over the last ~100 steps (a plateau)."""
    return [floor + (start - floor) * math.exp(-step / 20) for step in range(steps)]


def test_overfit_verdict_nearly_memorised_is_learning_not_a_bug() -> None:
    """Audit s8 M7: a healthy model on an unlucky seed ended 1.38 -> 0.0595 against a target of
    0.0491 and was told it 'has a bug'; the bug verdict needs a plateau far above the target."""
    target = 0.0491
    nearly = _curve(1.38, 0.0595)
    (verdict,) = _overfit_verdict(nearly, nearly[-1], target, 32)
    assert (verdict.severity, verdict.code) == (Severity.INFO, "overfit_batch_ok")
    assert verdict.evidence["nearly"] is True
    # softmax fed to cross-entropy plateaus at ln(1 + 2/e) = 0.55 for 3 classes: still a bug
    ln3 = math.log(3)
    floor = _curve(1.2, math.log(1 + 2 / math.e))
    (stuck,) = _overfit_verdict(floor, floor[-1], 0.05 * ln3, 32)
    assert (stuck.severity, stuck.code) == (Severity.WARNING, "overfit_batch_failed")
    assert "plateau" in stuck.message
    # a 90% fall that ends 700x over the target (std-10 init: 382 -> 38.5) is not memorising
    big = _curve(382, 38.5)
    (slow,) = _overfit_verdict(big, big[-1], 0.05 * ln3, 32)
    assert slow.code == "overfit_batch_failed"


def test_model_faults_found_at_init_are_named_as_the_cause_of_ignored_inputs(blobs) -> None:
    """Audit s8 M5: dead ReLUs were found at init, yet the stopping error sent the user to the
    data stage first."""
    x, y = blobs
    findings = preflight(dead_relus(), CE, x, y, task="classification", num_classes=3)
    ignored = next(f for f in findings if f.code == "inputs_ignored")
    assert "dead_relu" in ignored.evidence["causes"]
    assert "model stage" in ignored.fix and "data stage" not in ignored.fix
    assert "not reaching the output" not in ignored.message


def test_inputs_that_make_the_loss_worse_are_not_called_ignored(blobs) -> None:
    """Std-10 init: the real-input loss ends far above the zero-input twin's (949 vs 252 in
    the audit): the inputs reach the output, the init is at fault."""
    x, y = blobs
    model = net()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 10.0, generator=torch.Generator().manual_seed(0))
    findings = preflight(model, CE, x, y, task="classification", num_classes=3)
    codes = {f.code for f in findings}
    assert "inputs_ignored" not in codes
    hurt = next(f for f in findings if f.code == "inputs_hurt")
    assert hurt.evidence["real_inputs_loss"] > hurt.evidence["zero_inputs_loss"]
    assert "loss_at_init_off" in hurt.evidence["causes"] and "model stage" in hurt.fix
    # the verdict alone, with nothing found before: still not "ignored", still the model
    (alone,) = _inputs_verdict(949.0, 252.0, False)
    assert alone.code == "inputs_hurt" and "model stage" in alone.fix
    (same,) = _inputs_verdict(1.09, 1.09, False)
    assert same.code == "inputs_ignored" and "data stage" in same.fix


@pytest.mark.parametrize(("p", "width", "expected"), [
    (0.9, 32, Severity.WARNING),  # audit s8 M12: never mentioned
    (0.5, 32, Severity.INFO),  # 1.4k parameters: half of a small model
    (0.5, 512, None),  # 270k parameters: the classic p for wide layers
    (0.1, 32, None),  # the baselines' own
])
def test_heavy_dropout_is_named(p: float, width: int, expected: Severity | None, blobs) -> None:
    x, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Dropout(p), nn.Linear(width, width),
                          nn.ReLU(), nn.Linear(width, 3))
    findings = check_at_init(model, CE, x, y, task="classification", num_classes=3,
                             make_optimizer=default_optimizer)
    heavy = [f for f in findings if f.code == "dropout_heavy"]
    if expected is None:
        assert heavy == []
        return
    (finding,) = heavy
    assert finding.severity is expected and finding.evidence["dropout"] == {"2": p}
    assert "'2'" in finding.message and "model stage" in finding.fix


@pytest.mark.parametrize("order", [1, -1])
def test_earlier_causes_say_each_codes_own_stage_data_first(order) -> None:
    dead = warning("check", "dead_relu", "most ReLUs never fire.", "re-initialise; model stage.")
    scale = warning("data", "inputs_not_normalised", "feature scales differ.",
                    "standardise the inputs; data stage.")
    (found,) = _inputs_verdict(1.09, 1.09, False, [dead, scale][::order])
    assert found.code == "inputs_ignored"
    assert "as faults found earlier predict (inputs_not_normalised: data stage; dead_relu: " \
        "model stage)" in found.message
    assert found.fix.startswith("as inputs_not_normalised says:")  # the data fault is first


def test_slowly_descending_overfit_is_slow_not_a_bug() -> None:
    """Audit s11 D9: a correct MLP at lr 1e-3 went 1.13 -> 0.154 in 300 steps, ~18% down over
    its last 30, and was told it was 'stuck on a plateau' and 'has a bug'."""
    curve = [1.13 * math.exp(-step / 150) for step in range(300)]  # 86% down, still falling
    (verdict,) = _overfit_verdict(curve, curve[-1], 0.05 * math.log(3), 32)
    assert verdict.code == "overfit_batch_failed"
    assert "slow" in verdict.message and "plateau" not in verdict.message
    assert "bug" not in verdict.message and "3x higher" in verdict.fix
    assert verdict.evidence["still_falling"] is True


def test_loss_floor_of_label_smoothing_is_the_smoothed_targets_entropy() -> None:
    """Audit s11 D4: eps 0.1 over 3 classes: q = 0.9333 on the label, 0.0333 elsewhere,
    H = -0.9333 ln 0.9333 - 2 * 0.0333 ln 0.0333 = 0.0644 + 0.2267 = 0.2911."""
    assert loss_floor(nn.CrossEntropyLoss(label_smoothing=0.1), 3) == pytest.approx(0.2911,
                                                                                   abs=1e-4)
    assert loss_floor(CE, 3) == 0.0
    assert loss_floor(nn.MSELoss(), 3) == 0.0
    # torch's own loss: logits = ln q reach the floor, any other prediction scores above it
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2)
    y = torch.tensor([0, 3, 7])
    q = torch.full((3, 10), 0.2 / 10).scatter(1, y[:, None], 1 - 0.2 + 0.2 / 10)
    floor = loss_floor(loss_fn, 10)
    assert float(loss_fn(q.log(), y)) == pytest.approx(floor, rel=1e-5)
    assert float(loss_fn(q.log() + 0.3 * torch.randn(3, 10), y)) > floor
    assert float(loss_fn(50 * F.one_hot(y, 10).float(), y)) > floor


def test_label_smoothed_loss_memorises_one_batch(blobs) -> None:
    """Audit s11 D4: with label_smoothing 0.1 the plain target (0.055) is below the floor
    (0.291): a perfectly memorised batch was told 'could not overfit ... has a bug'."""
    x, y = blobs
    findings = preflight(net(), nn.CrossEntropyLoss(label_smoothing=0.1), x, y,
                         task="classification", num_classes=3)
    (overfit,) = [f for f in findings if f.code.startswith("overfit_batch")]
    assert overfit.code == "overfit_batch_ok", overfit.message
    assert overfit.evidence["target"] > overfit.evidence["floor"] > 0.29


def test_recipe_check_uses_the_checks_default_optimizer_unless_train_lr_is_set(
        tmp_path) -> None:
    """Audit s11 D9: run(until="check") trained the overfit check at lr 1e-3 (the untuned
    fallback) while trainwise.check uses 3e-3: a correct 2-layer MLP failed it on 3/3 seeds."""
    import trainwise
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # a function of x: learnable
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    result = trainwise.run({"run": {"out_dir": str(tmp_path), "seed": 0},
                            "train": {"max_epochs": 1}}, model=model, data=(x, y),
                           until="check", report=False)
    (overfit,) = [f for f in result.findings if f.code.startswith("overfit_batch")]
    assert overfit.code == "overfit_batch_ok", overfit.message


def test_check_optimizer_follows_train_lr() -> None:
    """train.lr = "auto" or under 3e-3: None (preflight's default, AdamW 3e-3: audit s15 B4);
    a higher train.lr: that lr."""
    from types import SimpleNamespace

    from trainwise.config import Config
    from trainwise.stages import RunContext
    from trainwise.stages_training import check_optimizer
    for lr, expected in (("auto", None), (1e-4, None), (0.02, 0.02)):
        config = Config.model_validate({"train": {"lr": lr}})
        ctx = SimpleNamespace(config=config, lr=0.0)
        ctx.make_optimizer = lambda m, lr=None, c=ctx: RunContext.make_optimizer(c, m, lr)
        make = check_optimizer(ctx)
        if expected is None:
            assert make is None
        else:
            assert make(net()).param_groups[0]["lr"] == expected


def test_a_mostly_frozen_model_failing_to_memorise_is_not_called_a_bug() -> None:
    """A linear probe (78% of the values frozen) said "A model that cannot memorise a few
    samples has a bug" (audit s14 G11); it is an info naming the trainable values now."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=gen)
    y = (x @ torch.randn(10, 3, generator=gen)).argmax(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    model[0].requires_grad_(False)  # 352 of 451 values
    found = {f.code: f for f in preflight(model, CE, x, y, task="classification",
                                          num_classes=3)}
    overfit = found["overfit_batch_failed"]
    assert overfit.severity is Severity.INFO and "has a bug" not in overfit.message
    assert "78% of the model's values frozen: only the 99 trainable values of 451" \
        in overfit.message
    assert found["params_frozen"].severity is Severity.WARNING  # the freezing is still named
    # the same head with the body trainable: memorises, so the info is about the freezing
    model[0].requires_grad_(True)
    assert "overfit_batch_ok" in {f.code for f in preflight(model, CE, x, y,
                                                             task="classification",
                                                             num_classes=3)}
