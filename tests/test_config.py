import pytest
import tomllib

from trainwise.config import Config, ConfigError, from_dict, load_config, to_toml, valid_keys


def test_defaults_are_the_builtin_demo():
    config = load_config()
    assert config.data.source == "mnist1d"
    assert config.train.lr == "auto"


def test_override_sets_typed_value():
    config = load_config(None, ["train.max_epochs=3", "train.lr=3e-3", "run.name=x"])
    assert config.train.max_epochs == 3
    assert config.train.lr == pytest.approx(3e-3)
    assert config.run.name == "x"


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match="train.max_epochs"):
        load_config(None, ["train.max_epoch=3"])


def test_unknown_key_in_file_names_the_closest(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nbatchsize = 64\n")
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config(path)


@pytest.mark.parametrize("assignment, field", [
    ("train.max_epochs=0", "train.max_epochs"),
    ("train.schedule=\"linear\"", "train.schedule"),
    ("train.batch_size=\"big\"", "train.batch_size"),
])
def test_wrong_value_names_field_value_and_allowed(assignment, field):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [assignment])
    message = str(caught.value)
    assert field in message
    assert assignment.split("=")[1].strip('"') in message


def test_malformed_override_says_the_form():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["max_epochs"])
    with pytest.raises(ConfigError, match=r'overrides=\["train.max_epochs=3"\] \(a list\) in '
                       "Python"):
        load_config(None, ["max_epochs"])


def test_one_string_as_overrides_is_refused_not_read_per_character():
    # it was iterated: "override 't' must look like section.key=value"
    for call in (lambda: load_config(None, "train.max_epochs=1"),
                 lambda: from_dict({}, "train.max_epochs=1")):
        with pytest.raises(ConfigError, match=r"must be a list.*Pass \['train.max_epochs=1'\]"):
            call()


def test_yaml_and_toml_agree(tmp_path):
    (tmp_path / "a.toml").write_text("[train]\nmax_epochs = 5\n[data]\ntask = \"regression\"\n")
    (tmp_path / "a.yaml").write_text("train:\n  max_epochs: 5\ndata:\n  task: regression\n")
    assert load_config(tmp_path / "a.toml") == load_config(tmp_path / "a.yaml")


def test_config_file_is_data_not_code(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("train: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError):
        load_config(path)


def test_resolved_toml_round_trips(tmp_path):
    config = load_config(None, ["train.lr=0.002", "split.group_column=\"patient\"",
                                "data.na_values=[\"?\", \"N/A\", 'say \"none\"']"])
    assert config.data.na_values == ["?", "N/A", 'say "none"']
    path = tmp_path / "resolved.toml"
    path.write_text(to_toml(config))
    assert load_config(path) == config


def test_relative_data_path_is_relative_to_config(tmp_path):
    (tmp_path / "t.csv").write_text("a,label\n1,0\n")
    (tmp_path / "c.toml").write_text('[data]\nsource = "t.csv"\n')
    assert load_config(tmp_path / "c.toml").data.source == str(tmp_path / "t.csv")


def test_every_valid_key_is_settable():
    defaults = Config().model_dump()
    for key in valid_keys():
        section, name = key.split(".")
        assert name in defaults[section]
    assert from_dict({}, ["run.seed=7"]).run.seed == 7


def test_a_ramp_that_goes_down_is_a_config_error():
    with pytest.raises(ConfigError, match=r"tune.start_lr \(2\) must be below tune.end_lr"):
        load_config(None, ["tune.start_lr=2.0"])


@pytest.mark.parametrize(("override", "allowed"), [
    ("train.lr=-1", "greater than 0; or Input should be 'auto'"),  # was AdamW's ValueError
    ("train.lr=0", "greater than 0; or Input should be 'auto'"),  # in the check stage (P5)
    ("tune.start_lr=0", "greater than 0"), ("tune.end_lr=-1", "greater than 0"),
    ("train.weight_decay=-0.1", "greater than or equal to 0"),
    ("train.grad_clip=-1", "greater than or equal to 0"),  # 0 stays allowed: no clipping
])
def test_a_step_size_or_penalty_below_its_range_names_the_field_and_what_is_allowed(
        override, allowed):
    key, value = override.split("=")
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    assert str(caught.value).startswith(f"'{key}' = {value} is not allowed: Input should be "
                                        f"{allowed}")


def test_lr_auto_and_off_values_still_load():
    config = load_config(None, ["train.grad_clip=0", "train.weight_decay=0", "train.lr=1e-3"])
    assert (config.train.grad_clip, config.train.weight_decay, config.train.lr) == (0, 0, 1e-3)
    assert load_config(None, ['train.lr="auto"']).train.lr == "auto"


def test_a_union_is_explained_per_key_without_pydantics_member_names():
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["tune.num_candidates=7"])
    message = str(caught.value)
    assert message.startswith("'tune.num_candidates' = 7 is not allowed")
    assert "less than or equal to 5; or Input should be 'auto'" in message
    assert "constrained-int" not in message and "literal" not in message


def test_trainwise_config_explains_each_key_from_the_comment_beside_its_default():
    from trainwise.config import RunConfig, SplitConfig, TuneConfig, field_notes

    run, tune = field_notes(RunConfig), field_notes(TuneConfig)
    assert run["num_nodes"] == "machines: torchrun --nnodes, SLURM --nodes"
    assert run["strategy"].startswith('"auto" = ddp when devices * num_nodes > 1')
    assert run["precision"].startswith("Fabric precision of training")
    assert "split.seed" in run["seed"]  # was "": unexplained (audit s11 R12)
    assert tune["num_candidates"].endswith("as many as keep neighbouring candidates <= 2.5x apart")
    assert field_notes(SplitConfig)["cut"].endswith("the last val_fraction of each series' rows")
    assert set(run) == set(RunConfig.model_fields) and set(tune) == set(TuneConfig.model_fields)
    config = load_config(None, ["train.max_epochs=3"])
    text = to_toml(config, notes=True)
    assert "# machines: torchrun --nnodes, SLURM --nodes\nnum_nodes = 1" in text
    assert from_dict(tomllib.loads(text)) == config  # still a config that loads


def test_a_number_for_tune_batch_size_points_to_train_batch_size():
    with pytest.raises(ConfigError, match="the size itself is train.batch_size = 64"):
        load_config(None, ["tune.batch_size=64"])


def test_a_section_that_is_not_a_table_is_named():
    with pytest.raises(ConfigError, match=r"'train' = 5 is not allowed"):
        from_dict({"train": 5})


def test_a_data_file_in_place_of_the_config_is_the_data_source(tmp_path):
    # `trainwise run churn.CSV` used to be parsed as TOML ("not valid CSV: Expected '='")
    table = tmp_path / "churn.CSV"
    table.write_text("a,label\n1,0\n")
    config = load_config(table, ["data.target=\"label\"", "train.max_epochs=3"])
    assert config.data.source == str(table) and config.train.max_epochs == 3
    assert config.model == Config().model  # everything else at its default
    assert load_config(tmp_path).data.source == str(tmp_path)  # an image folder too
    with pytest.raises(ConfigError, match="not valid TOML"):
        (tmp_path / "broken.toml").write_text("[data\n")
        load_config(tmp_path / "broken.toml")


def test_a_huge_wrong_value_is_shown_cut():
    with pytest.raises(ConfigError) as caught:
        from_dict({"data": {"source": list(range(10_000))}})
    assert "'data.source' = [0, 1, 2," in str(caught.value) and len(str(caught.value)) < 300


def test_an_assignment_in_python_gets_the_overrides_errors():
    # pydantic's ValidationError ("Object has no attribute 'max_epoch'" and a URL) before
    config = load_config()
    with pytest.raises(ConfigError, match=r"unknown config key 'train.max_epoch'\. Did you mean "
                       r"'train.max_epochs'\?"):
        config.train.max_epoch = 3
    with pytest.raises(ConfigError, match=r"'train.max_epochs' = 0 is not allowed: .*equal to 1"):
        config.train.max_epochs = 0
    with pytest.raises(ConfigError, match="unknown config key 'trian'. Did you mean 'train'?"):
        config.trian = 3
    config.train.max_epochs = 3
    assert config.train.max_epochs == 3


def test_a_built_in_set_named_in_place_of_the_config_is_read_as_the_data_source(
        tmp_path, monkeypatch, capsys):
    """Audit s11 M15: `trainwise run wine` was refused as a missing config file, and the error
    did not name the way that works."""
    from trainwise.cli import main
    monkeypatch.chdir(tmp_path)
    assert load_config("wine").data.source == "wine"
    main(["config", "digits"])
    assert 'source = "digits"' in capsys.readouterr().out
    # review s11 VA12: a built-in name means the built-in set, beside a same-named folder
    # too, and says so (it trained on scikit-learn's digits silently); ./wine is the folder
    from trainwise.config_resolution import resolve_config

    (tmp_path / "wine").mkdir()
    capsys.readouterr()
    assert resolve_config("wine").data.source == "wine"  # the built-in loader's name
    said = " ".join(capsys.readouterr().err.split())
    assert "is the built-in wine data set, not the 'wine' folder here" in said
    assert "trainwise run ./wine" in said
    assert resolve_config("./wine").data.source == str(tmp_path / "wine")
    with pytest.raises(ConfigError, match="data.source='\"wine\"'"):
        load_config("wines")


@pytest.mark.parametrize("seed", ["-5", "18446744073709551616", "4294967296"])
def test_a_seed_numpy_cannot_take_is_a_config_error(seed):
    """Audit s11 R7: it passed validation, then seed_everything raised a traceback (exit 1)."""
    with pytest.raises(ConfigError, match=r"'run\.seed' = " + seed):
        load_config(None, [f"run.seed={seed}"])
    assert load_config(None, ["run.seed=4294967295"]).run.seed == 2**32 - 1  # numpy's largest


def test_every_run_key_is_explained_by_trainwise_config():
    """Audit s11 R12: run.seed (and out_dir) had no explanation; seed also re-draws the split."""
    shown = to_toml(Config(), notes=True).split("[run]")[1]
    for key in ("out_dir", "seed"):
        above = shown.split(f"\n{key} = ")[0].splitlines()[-1]
        assert above.startswith("# "), key
    assert "split" in shown.split("\nseed = ")[0].rsplit("out_dir", 1)[1]


def test_split_seed_holds_the_test_rows_while_run_seed_varies(tmp_path):
    """Audit s11 R12: run.seed also re-drew the split, so a spread over seeds mixed in other
    test rows; split.seed pins the split (and the max_samples subset)."""
    import numpy as np

    import trainwise

    def split_of(*overrides):
        result = trainwise.run(until="split", report=False, overrides=[
            'data.source="digits"', "data.max_samples=400", f'run.out_dir="{tmp_path}"',
            *overrides])
        with np.load(result.path / "split.npz") as saved:
            return {part: saved[part].tolist() for part in ("train", "val", "test")}

    assert split_of("run.seed=0") != split_of("run.seed=1")  # the default: run.seed draws it
    pinned = split_of("run.seed=0", "split.seed=7")
    assert split_of("run.seed=1", "split.seed=7") == pinned
    assert split_of("run.seed=7") == pinned  # -1 means run.seed: the same draw as seed 7


HOSTILE = ['dq"dir/churn.csv', "my\\run", "C:\\temp\\new.csv", "C:\\Users\\me\\t.csv",
           "two\nlines\ttab\rcr", "naïve 日本語 ✓", 'a"b\\c', "\x00\x1f\x7f end", "''' \"\"\""]


@pytest.mark.parametrize("text", HOSTILE)
def test_config_toml_round_trips_quotes_backslashes_and_control_characters(tmp_path, text):
    """Audit s15 K20: strings were written unescaped: a quote broke config.toml, and a
    backslash came back as a tab, a newline or a carriage return."""
    config = from_dict({"data": {"target": text, "na_values": [text, "?"]},
                        "split": {"group_column": text}, "model": {"folder": text}})
    for notes in (False, True):
        path = tmp_path / "c.toml"
        path.write_text(to_toml(config, notes=notes), encoding="utf-8")
        again = load_config(path)
        assert again == config
        assert (again.data.target, again.data.na_values) == (text, [text, "?"])


def _float_keys() -> list[str]:
    """Every key whose type admits a float (lr's union with "auto", split.cut's and gap's)."""
    keys = []
    for section, field in Config.model_fields.items():
        for name, inner in field.annotation.model_fields.items():
            if "float" in str(inner.annotation) or inner.annotation is float:
                keys.append(f"{section}.{name}")
    return keys


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
@pytest.mark.parametrize("key", _float_keys())
def test_a_non_finite_float_is_refused_naming_the_key(key, value):
    """Audit s15 K17: train.lr = inf passed gt=0, and the run blamed the model for its NaN."""
    with pytest.raises(ConfigError, match=rf"^'{key}' = .*finite number"):
        load_config(None, [f"{key}={value}"])
    with pytest.raises(ConfigError, match=rf"^'{key}' = "):
        from_dict({key.split(".")[0]: {key.split(".")[1]: float(value)}})


@pytest.mark.parametrize(("override", "key", "text"), [
    ("run.name=2024", "run", "2024"), ("data.target=1", "data", "1"),
    ("split.group_column=true", "split", "true"), ("run.name=1e3", "run", "1e3"),
    ("run.name=nan", "run", "nan"), ('run.name="2024"', "run", "2024"),
    ("data.target=1_000", "data", "1_000")])
def test_unquoted_text_that_looks_like_a_number_is_kept_as_typed(override, key, text):
    """Audit s15 K21: --set run.name=2024 was refused ("Input should be a valid string"),
    and run.name=1e3 was shown as 1000.0."""
    config = load_config(None, [override])
    name = override.split("=")[0].split(".")[1]
    assert getattr(getattr(config, key), name) == text


def test_a_number_for_a_text_key_in_a_file_says_to_quote_it(tmp_path):
    (tmp_path / "c.toml").write_text("[run]\nname = 2024\n[data]\ntarget = true\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "c.toml")
    said = str(caught.value)
    assert """put the value in quotes exactly as you wrote it to mean the text: name = "..." in \
TOML, name: "..." in YAML, --set 'run.name="..."')""" in said
    assert 'target = "..." in TOML, target: "..." in YAML' in said


def test_the_quote_hint_does_not_echo_a_parsed_number_as_the_text(tmp_path):
    """Review VO5: `target = 0x1F` said to write target = "31", a column the user never had."""
    (tmp_path / "c.toml").write_text("[data]\ntarget = 0x1F\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "c.toml")
    assert '"31"' not in str(caught.value)


@pytest.mark.parametrize(("values", "said"), [
    ({"train": {"lr": True}}, "'train.lr' = True is not allowed: a boolean is not a number"),
    ({"train": {"max_epochs": True}}, "'train.max_epochs' = True is not allowed: a boolean"),
    ({"run": {"checks": 1}}, "'run.checks' = 1 is not allowed: a number is not a boolean"),
    ({"tune": {"short_runs": 0.0}}, "'tune.short_runs' = 0.0 is not allowed: a number is not"),
])
def test_a_bool_for_a_number_or_a_number_for_a_bool_is_refused(values, said):
    """Audit s15 K7: train.lr = true trained at lr 1.0, run.checks = 1 was read as true."""
    with pytest.raises(ConfigError, match=said):
        from_dict(values)


def test_text_that_spells_a_number_or_a_yes_still_loads():
    """K7's harmless coercions stay: the text means what it says."""
    config = from_dict({"train": {"max_epochs": "3", "lr": "1e-3"},
                        "run": {"checks": "yes"}, "tune": {"short_runs": "off"}})
    assert (config.train.max_epochs, config.train.lr) == (3, 1e-3)
    assert (config.run.checks, config.tune.short_runs) == (True, False)


@pytest.mark.parametrize(("override", "said"), [
    ("train.dropout=0.2", "'dropout' is a key of [model]: did you mean 'model.dropout'?"),
    ("tune.lr=0.1", "'lr' is a key of [train]: did you mean 'train.lr'?"),
    ("run.batch_size=8", "'batch_size' is a key of [train] and [tune]: did you mean "
                         "'train.batch_size' or 'tune.batch_size'?"),
    ("foo.bar=1", "The sections are [data], [split], [model], [train], [tune], [run]."),
    ("train.max_epoch=3", "Did you mean 'train.max_epochs'?"),  # a misspelling: as before
    ("train.epochs=3", "Did you mean 'train.max_epochs'?"),
    ("train.batchsize=3", "Did you mean 'train.batch_size'?"),  # its own section's first
    # audit s16 D2: 'train.' shared made this 0.67 like 'train.layer_every'; no guess now
    ("train.fancy_new_key=3", "unknown config key 'train.fancy_new_key'."),
    # review s16 VF3: the names alone sent this to 'data.drop_columns' (0.64 against 0.63)
    ("data.target_column=y", "Did you mean 'data.target'?"),
])
def test_a_key_in_the_wrong_section_points_to_the_section_that_has_it(override, said):
    """Audit s15 K5: train.dropout was pointed to train.lr, `source` to [tune]."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    assert str(caught.value).endswith(said)


def test_a_key_outside_any_section_in_a_file_names_its_section(tmp_path):
    (tmp_path / "c.toml").write_text('source = "wine"\n')
    with pytest.raises(ConfigError, match=r"unknown config key 'source'\. 'source' is a key of "
                                          r"\[data\]: did you mean 'data.source'\?"):
        load_config(tmp_path / "c.toml")


@pytest.mark.parametrize("name", ["a/b", "../../escaped", "my\\run", "..\\x", "x\0y"])
def test_a_run_name_that_is_not_one_folder_name_is_refused(name):
    """Audit s15 K10: run.name=../../escaped wrote the run outside run.out_dir."""
    with pytest.raises(ConfigError, match=r"^'run.name' = .* is not allowed: run.name ends the "
                                          r"run folder's name.*set run.out_dir"):
        from_dict({"run": {"name": name}})
    assert from_dict({"run": {"name": "v2.1-ablation"}}).run.name == "v2.1-ablation"


@pytest.mark.parametrize("name", ["lr1e-3..1e-2", "v2...final", ".."])
def test_a_run_name_with_dots_but_no_separator_is_one_folder_name(tmp_path, name):
    """Review VO11: '..' was refused anywhere in the name; without '/' or '\\' it cannot
    climb out of run.out_dir, since the name only ends <date>-<time>-<name>."""
    from trainwise.rundir import RunDir

    assert from_dict({"run": {"name": name}}).run.name == name
    made = RunDir.create(tmp_path, name).path
    assert made.parent == tmp_path and made.name.endswith(f"-{name}")


def test_every_keys_note_is_its_own_and_whole():
    """Audit s15 K2: model.name's note was cut at "cnn2d for" and the rest glued to
    model.folder's; data.max_samples' second line went to data.kind; split.num_folds and
    data.drop_columns lost the lines after the class's last statement."""
    import re

    from trainwise.config import field_notes

    for section, field in Config.model_fields.items():
        notes = field_notes(field.annotation)
        assert set(notes) == set(field.annotation.model_fields), section
        for key, note in notes.items():
            assert note, f"{section}.{key} has no note"
            assert note.count("(") == note.count(")"), f"{section}.{key}: {note}"
            assert not re.search(r"([,;:(]|\b(for|the|a|and|or|of|to|with|in|by))$", note), \
                f"{section}.{key} ends mid-sentence: {note}"
    data, model, split = (field_notes(c) for c in (Config.model_fields["data"].annotation,
                                                     Config.model_fields["model"].annotation,
                                                     Config.model_fields["split"].annotation))
    assert data["max_samples"].endswith("drawn per class, each keeping enough rows for every "
                                        "part; stages.py)")
    assert data["kind"].startswith("how a .npz array is read")
    assert data["drop_columns"].endswith("Empty columns and copies are left out anyway")
    assert '"gru"' in model["name"] and model["name"].endswith("(your own nn.Module)")
    assert model["folder"].startswith('the folder holding a "module:Class" module')
    assert split["num_folds"].endswith("reports the validation score's mean and spread "
                                       "(stages_crossval.py)")


def test_train_lr_note_says_what_is_allowed():
    """Audit s15 K8: the note said 0 or below is refused "deep in the check stage"; it is
    refused up front."""
    from trainwise.config import field_notes

    note = field_notes(Config.model_fields["train"].annotation)["lr"]
    assert note.startswith('a finite number > 0, or "auto"') and "AdamW refuses" not in note
    with pytest.raises(ConfigError, match="'train.lr' = 0 is not allowed"):
        load_config(None, ["train.lr=0"])
