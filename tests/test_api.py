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
