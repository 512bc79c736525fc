import trainwise


def test_every_public_verb_resolves_to_a_callable():
    for name in trainwise.__all__:
        assert callable(getattr(trainwise, name)), name


def test_report_verb_is_the_function_not_a_module():
    from trainwise.reporting import build_report

    assert trainwise.report is build_report
    assert trainwise.split.__name__ == "split_indices"
