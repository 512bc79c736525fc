"""Reading a config file: hostile, empty, repeated and JSON files (audit s15 K3, K4, K6, K11,
K13)."""

from pathlib import Path

import pytest

from trainwise.config import ConfigError, load_config


@pytest.mark.parametrize(("name", "text", "said"), [
    ("huge.toml", "[train]\nmax_epochs = 1" + "0" * 5000 + "\n", "holds a value TOML cannot"),
    ("deep.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n", "nests values too deeply"),
    ("deep.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n", "nests values too deeply"),
    ("huge.yaml", "train:\n  max_epochs: 1" + "0" * 5000 + "\n", "holds a value YAML cannot"),
    ("deep.json", "[" * 5000 + "]" * 5000, "nests values too deeply"),
])
def test_a_hostile_config_is_a_config_error_naming_the_file(tmp_path, name, text, said):
    """K3: a ValueError / RecursionError traceback (exit 1), not a config error (exit 2)."""
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=f"config file '.*{name}' {said}"):
        load_config(tmp_path / name)


def test_a_repeated_yaml_section_is_refused_like_toml(tmp_path):
    """K4: the first `data:` block was dropped, so the run trained the demo set."""
    (tmp_path / "dup.yaml").write_text("data:\n  source: wine\ndata:\n  target: x\n")
    with pytest.raises(ConfigError, match=r"found the key 'data' twice \(first line 1\)"):
        load_config(tmp_path / "dup.yaml")
    (tmp_path / "dup2.yaml").write_text("train:\n  lr: 0.1\n  max_epochs: 2\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"found the key 'lr' twice \(first line 2\)"):
        load_config(tmp_path / "dup2.yaml")
    (tmp_path / "dup.json").write_text('{"data": {"source": "wine"}, "data": {"target": "x"}}')
    with pytest.raises(ConfigError) as caught:  # the file named, as YAML's (review VO13)
        load_config(tmp_path / "dup.json")
    assert str(caught.value) == (f"config file '{tmp_path / 'dup.json'}' is not valid JSON: "
                                 "found the key 'data' twice: JSON would keep only the last "
                                 "one. Merge them into one.")


@pytest.mark.parametrize(("name", "text"), [("e.toml", ""), ("c.toml", "# only a comment\n"),
                                            ("e.yaml", ""), ("e.json", "{}")])
def test_an_empty_config_is_refused_in_every_format(tmp_path, name, text):
    """K6: an empty TOML silently ran the 40-epoch demo while an empty YAML was refused."""
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=f"'.*{name}' is empty: a config holds sections"):
        load_config(tmp_path / name)


@pytest.mark.parametrize("name", ["a.json", "A.JSON"])
def test_a_json_config_is_read_as_json(tmp_path, name):
    """K11: a .json config was read as TOML: "Invalid statement (at line 1, column 1)"."""
    (tmp_path / name).write_text('{"data": {"source": "wine"}, "train": {"max_epochs": 2, '
                                 '"lr": 1e-3}}')
    config = load_config(tmp_path / name)
    assert (config.data.source, config.train.max_epochs, config.train.lr) == ("wine", 2, 1e-3)


def test_yaml_reads_booleans_and_exponents_as_toml_does(tmp_path):
    """K13: YAML 1.1 read `name: no` as False ("Input should be a valid string"); K7: and
    `lr: 1e-3` (no dot) as the text "1e-3". Both now read as the same TOML would."""
    (tmp_path / "a.yaml").write_text("run:\n  name: no\n  checks: false\ntrain:\n  lr: 1e-3\n"
                                     "data:\n  na_values: [yes, off, 'n/a']\n")
    (tmp_path / "a.toml").write_text('[run]\nname = "no"\nchecks = false\n[train]\nlr = 1e-3\n'
                                     '[data]\nna_values = ["yes", "off", "n/a"]\n')
    config = load_config(tmp_path / "a.yaml")
    assert (config.run.name, config.run.checks, config.train.lr) == ("no", False, 1e-3)
    assert config.data.na_values == ["yes", "off", "n/a"]
    assert config == load_config(tmp_path / "a.toml")


def test_yaml_reads_integers_as_yaml_1_2_and_toml_do(tmp_path):
    """Review VO5: YAML 1.1 read `gap: 1:30` as 90 (base 60) without a word, and `target: 010`
    as 8 (octal); they stay the text written, which the key's own check then reads."""
    import yaml

    from trainwise.config_yaml import ConfigLoader

    read = yaml.load("a: 1:30\nb: 010\nc: 0x1F\nd: 0o17\ne: 1_000\nf: -7\ng: 1:30.5\n",
                     ConfigLoader)
    assert read == {"a": "1:30", "b": "010", "c": 31, "d": 15, "e": 1000, "f": -7, "g": "1:30.5"}
    (tmp_path / "t.yaml").write_text("data:\n  target: 010\n")
    assert load_config(tmp_path / "t.yaml").data.target == "010"
    (tmp_path / "g.yaml").write_text("split:\n  strategy: time\n  gap: 1:30\n")
    with pytest.raises(ConfigError, match="'split.gap' = '1:30' is not allowed"):
        load_config(tmp_path / "g.yaml")


@pytest.mark.parametrize("value", ["1" + "0" * 5000, "[" * 5000])
def test_a_hostile_override_is_a_config_error(value):
    """K3 for --set: the same ValueError / RecursionError tracebacks."""
    with pytest.raises(ConfigError, match="too long or too deeply nested to read"):
        load_config(None, [f"data.na_values={value}"])


@pytest.mark.parametrize("written", ["imgs", "./imgs", "table"])
def test_a_relative_folder_or_suffixless_source_is_read_beside_the_config(tmp_path, monkeypatch,
                                                                          written):
    """README: data.source is relative to the config file's folder; an image folder (no
    suffix) beside it was refused from another working folder with "did you mean 'digits'"
    (review VO4)."""
    (tmp_path / "cfg" / "imgs" / "cat").mkdir(parents=True)
    (tmp_path / "cfg" / "table").write_text("a,y\n1,0\n")
    (tmp_path / "cfg" / "x.toml").write_text(f'[data]\nsource = "{written}"\n')
    monkeypatch.chdir(tmp_path)  # the config is one folder down
    config = load_config(tmp_path / "cfg" / "x.toml")
    assert Path(config.data.source).resolve() == (tmp_path / "cfg" / written).resolve()


def test_a_missing_bare_source_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"in the working folder '{tmp_path}' or beside the "
                                          "config file"):
        load_config(None, ['data.source="imgs"'])
