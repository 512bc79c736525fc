
import trainwise


def test_every_public_verb_resolves_to_a_callable():
    for name in trainwise.__all__:
        assert callable(getattr(trainwise, name)), name


def test_report_verb_is_the_function_not_a_module():
    from trainwise.reporting import build_report

    assert trainwise.report is build_report
    assert trainwise.split.__name__ == "split_indices"


def test_tune_verbs_sit_beside_the_tune_subpackage():
    from trainwise.tune.batch_probe import find_batch_size
    from trainwise.tune.search import tune_lr

    assert trainwise.tune_lr is tune_lr and trainwise.find_batch_size is find_batch_size
    assert trainwise.tune.__name__ == "trainwise.tune"  # the subpackage is not shadowed


def test_the_tune_subpackage_and_tune_config_need_no_import_first():
    """`trainwise.tune` raised AttributeError until `import trainwise.tune` ran, with no
    word of tune_lr; TuneConfig, which tune_lr takes, was not exported. A fresh interpreter:
    this one has imported the subpackage already."""
    import subprocess
    import sys

    code = ("import trainwise, trainwise.config as c; t = trainwise.tune; "
            "assert t.tune_lr is trainwise.tune_lr and 'tune_lr(model' in t.__doc__; "
            "assert trainwise.TuneConfig is c.TuneConfig; "
            "exec('try: trainwise.tunes\\nexcept AttributeError as e: print(e)')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "has no attribute 'tunes'" in out and "tune_lr" in out


def test_dir_lists_the_lazy_verbs_and_the_docstring_names_them():
    import trainwise

    names = dir(trainwise)
    for verb in ("run", "tune_lr", "find_lr", "fit", "Monitor", "array_data", "tune"):
        assert verb in names  # they are loaded lazily, so dir() used to miss them
    documented = trainwise.__doc__
    assert [name for name in trainwise.__all__ if name[0].islower() and name not in documented] \
        == []


def test_all_is_the_exported_names_and_stage_failed_is_gone():
    """__all__ is a literal list (checkers read no other kind), so it must not drift from
    _LAZY; StageFailed was exported but nothing raised it, so `except StageFailed` never ran."""
    import trainwise.findings

    assert set(trainwise.__all__) == set(trainwise._LAZY) | {
        "Config", "ConfigError", "Finding", "Findings", "Severity", "TrainwiseError",
        "TuneConfig", "load_config"}
    assert len(trainwise.__all__) == len(set(trainwise.__all__))
    assert "StageFailed" not in trainwise.__all__
    assert not hasattr(trainwise, "StageFailed") and not hasattr(trainwise.findings,
                                                                  "StageFailed")


def test_type_checkers_see_every_lazy_verb_as_the_object_it_loads():
    """The lazy verbs came from `__getattr__(name) -> Any`; the TYPE_CHECKING imports give
    checkers the real objects, and must name the same (module, attribute) as _LAZY."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(trainwise))
    [block] = [node for node in tree.body if isinstance(node, ast.If)
               and getattr(node.test, "id", None) == "TYPE_CHECKING"]
    imported = {alias.asname or alias.name: (statement.module, alias.name)
                for statement in block.body for alias in statement.names}
    assert imported == trainwise._LAZY


def test_the_tune_subpackage_holds_the_tune_verb():
    assert trainwise.tune.tune_lr is trainwise.tune_lr


def test_dir_lists_the_public_names_and_subpackages_not_the_modules_internals():
    names = set(dir(trainwise))
    assert set(trainwise.__all__) | {"checks", "data", "model", "reporting", "train",
                                     "tune"} <= names
    public = {n for n in names if not n.startswith("_")}
    assert public == set(trainwise.__all__) | set(trainwise._SUBPACKAGES)  # s16 N15: no Any,
    # import_module, random, functools, config_errors, rundir, ... beside the verbs
    assert "__version__" in names


def test_the_verbs_that_return_findings_give_findings_that_still_compare_as_lists():
    import numpy as np

    from trainwise.data.leakage import check_leakage

    x = np.arange(24.0).reshape(12, 2)
    found = trainwise.check_leakage(x[:8], x[6:])  # rows 6, 7 on both sides
    assert isinstance(found, trainwise.Findings) and isinstance(found, list)
    assert found == check_leakage(x[:8], x[6:])  # the same findings as the function's
    assert "error [split]" in str(found) and "<table>" in found._repr_html_()
    assert trainwise.check_leakage is trainwise.check_leakage  # one wrapper, cached
    assert trainwise.check_leakage.__wrapped__ is check_leakage
    assert "Errors for rows copied" in trainwise.check_leakage.__doc__  # help() is its own
    y = (x[:, 0] > 10).astype(np.int64)
    findings, summary = trainwise.audit((x, y))  # audit's (findings, summary) tuple
    assert isinstance(findings, trainwise.Findings) and isinstance(summary, dict)


def test_every_findings_list_handed_to_a_notebook_is_a_findings():
    """Review s16 VN7: only the verbs __init__ wrapped by name gave Findings; the Monitor,
    LiveDiagnosis, find_lr's and tune_lr's results (the notebook's main surfaces) gave plain
    lists, and trainwise.diagnose differed from trainwise.train.diagnose.diagnose."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from trainwise.train.diagnose import diagnose
    from trainwise.tune.lr_range import LrRangeResult
    from trainwise.tune.search import TuneResult

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    train = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    monitor = trainwise.Monitor(None, console=False, report=False, tensorboard=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        for xb, yb in train:
            loss = nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            monitor.step(loss, model, optimizer)
            optimizer.step()
        monitor.end_epoch(val_loss=float(loss))
    rt = LrRangeResult(1e-3, 1e-4, 1e-2, 0.0, "valley", findings=[])
    lists = {"Monitor.findings()": monitor.findings(), "Monitor.close()": monitor.close(),
             "LiveDiagnosis.findings": trainwise.LiveDiagnosis(2).findings,
             "LrRangeResult.findings": rt.findings,
             "TuneResult.findings": TuneResult(1e-3, rt, None).findings,
             "diagnose": diagnose(monitor.history)}
    assert {name: type(found).__name__ for name, found in lists.items()} == dict.fromkeys(
        lists, "Findings")
    assert trainwise.diagnose is diagnose


def test_monitor_and_live_diagnosis_say_what_they_hold_in_their_reprs():
    import torch

    monitor = trainwise.Monitor(console=False)
    for _ in range(3):
        monitor.step(torch.tensor(1.0))
    monitor.end_epoch(val_loss=0.25)
    assert repr(monitor) == ("<Monitor run_dir=None (in memory): 3 steps, 1 epoch, last "
                             "val_loss 0.25; .findings() diagnoses, .close() writes the run>")
    live = trainwise.LiveDiagnosis(stop=False)
    assert repr(live) == "LiveDiagnosis(said=0, stop=False)"
    live.findings.append(trainwise.Finding("train", trainwise.Severity.WARNING,
                                           "loss_exploding", "up", {}, "lower the lr"))
    assert repr(live) == "LiveDiagnosis(said=1: warning loss_exploding, stop=False)"
