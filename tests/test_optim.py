"""AdamW groups on the models where single rules fail: GPT (tied head, custom ln_f), ViT
(pos_embed/cls_token via no_weight_decay), a CNN with BatchNorm and a frozen layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainwise.findings import TrainwiseError
from trainwise.model.optim import group_table, make_adamw, param_groups


class CustomRMSNorm(nn.Module):
    """Not a torch norm class: only its name (ln_f) and shape say it is a norm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 4 * dim)


class TinyGPT(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(8, dim)
        self.blocks = nn.ModuleList([Block(dim), Block(dim)])
        self.ln_f = CustomRMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as GPT-2 does


class TinyViT(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 17, dim))  # 3-D: an ndim rule decays it
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}


def small_cnn() -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    model[0].requires_grad_(False)  # a frozen stem
    return model


def _decay_names(groups: list[dict]) -> set[str]:
    return {n for g in groups if g["weight_decay"] > 0 for n in g["param_names"]}


def _assert_partition(model: nn.Module, groups: list[dict]) -> None:
    """Every trainable param in exactly one group, by identity; no frozen param anywhere."""
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(grouped) == len(set(grouped)), "a parameter sits in two groups"
    assert set(grouped) == trainable


GPT_DECAY = {f"blocks.{i}.{layer}.weight" for i in range(2) for layer in ("attn", "proj", "fc")}
VIT_DECAY = {"patch_embed.weight", "qkv.weight", "head.weight"}
CNN_DECAY = {"3.weight", "8.weight"}  # 0.weight is frozen


@pytest.mark.parametrize("make, expected", [(TinyGPT, GPT_DECAY), (TinyViT, VIT_DECAY),
                                            (small_cnn, CNN_DECAY)])
def test_decay_set_is_exactly_the_matmul_weights(make, expected: set[str]) -> None:
    model = make()
    groups = param_groups(model, 0.1)
    _assert_partition(model, groups)
    assert _decay_names(groups) == expected
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]


def test_tied_weight_counted_once_and_embeddings_configurable() -> None:
    model = TinyGPT()
    groups = param_groups(model, 0.1)
    names = [n for g in groups for n in g["param_names"]]
    assert "wte.weight" in names and "lm_head.weight" not in names
    unique = {id(p) for p in model.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(unique)
    with_embeddings = param_groups(model, 0.1, decay_embeddings=True)
    _assert_partition(model, with_embeddings)
    assert _decay_names(with_embeddings) == GPT_DECAY | {"wte.weight", "wpe.weight"}


def test_reasons_name_the_rule_that_decided() -> None:
    table = {r["name"]: r for r in group_table(TinyViT(), 0.05)}
    assert table["pos_embed"]["reason"] == "listed in no_weight_decay()"
    assert table["norm1.weight"]["reason"].startswith("normalisation layer")
    assert table["qkv.bias"]["reason"] == "bias"
    assert table["head.weight"] == {"name": "head.weight", "shape": [10, 16], "decay": True,
                                    "weight_decay": 0.05, "reason": "weight of Linear"}
    gpt = {r["name"]: r for r in group_table(TinyGPT(), 0.1)}
    assert gpt["ln_f.weight"]["decay"] is False
    assert "tied with lm_head.weight" in gpt["wte.weight"]["reason"]
    cnn = {r["name"]: r for r in group_table(small_cnn(), 0.1)}
    assert cnn["0.weight"]["reason"].startswith("frozen") and not cnn["0.weight"]["decay"]


def test_name_rule_catches_norms_without_no_weight_decay() -> None:
    class Plain(TinyViT):
        def no_weight_decay(self) -> set[str]:
            return set()

    assert _decay_names(param_groups(Plain(), 0.1)) == VIT_DECAY  # pos_embed by its name


def test_make_adamw_steps_and_keeps_group_decay() -> None:
    model = small_cnn()
    optimizer = make_adamw(model, lr=1e-3, weight_decay=0.1)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]
    before = model[8].weight.detach().clone()
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model[8].weight)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        make_adamw(frozen, lr=1e-3, weight_decay=0.1)


def _lazy_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.LazyConv1d(4, 3), nn.LazyBatchNorm1d(), nn.ReLU(), nn.Flatten(),
                         nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 3))


def _groups(model: nn.Module) -> list[tuple[float, list[str]]]:
    return [(g["weight_decay"], g["param_names"]) for g in param_groups(model, 0.1)]


def test_lazy_layers_get_the_groups_they_will_have_after_a_forward_pass() -> None:
    """Audit s11 D3: param_groups/make_adamw on a model with lazy layers died with torch's
    'Can't access the shape of an uninitialized parameter'. Their groups must equal those of
    the same model after a forward pass (weights decay, biases and the norm do not)."""
    lazy = _lazy_net()
    before, table = _groups(lazy), group_table(lazy, 0.1)
    optimizer = make_adamw(lazy, lr=1e-2, weight_decay=0.1)
    x, y = torch.randn(16, 2, 10), torch.randint(0, 3, (16,))
    nn.functional.cross_entropy(lazy(x), y).backward()  # the first forward gives the shapes
    assert before == _groups(lazy)
    assert before[0] == (0.1, ["0.weight", "4.weight", "6.weight"])
    assert [r["reason"] for r in table] == [r["reason"] for r in group_table(lazy, 0.1)]
    first = lazy[4].weight.detach().clone()
    optimizer.step()  # the optimizer built before the forward trains the materialised weights
    assert not torch.equal(first, lazy[4].weight)


def test_an_unknown_uninitialised_parameter_is_an_actionable_error() -> None:
    """A custom lazy parameter outside Linear/Conv: its decay is not decidable without a shape."""
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.parameter.UninitializedParameter()

    expected = r"gain \(Scale\) is not initialised.*model\(x\[:1\]\)"
    with pytest.raises(TrainwiseError, match=expected):
        param_groups(nn.Sequential(Scale()), 0.1)
