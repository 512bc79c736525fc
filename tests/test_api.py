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
