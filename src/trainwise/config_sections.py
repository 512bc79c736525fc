"""The config's sections: each key's type, bounds and default, with the comment beside it
that `trainwise config` prints (config.field_notes reads it from this file's source). A note
goes above its key, or beside it and on the lines below; a key with a note beside it whose
next key's note is above must keep to one line, else the two notes run together.

Checked by pydantic, never executed; a wrong value or key is a ConfigError whose words come
from config_errors.py. Load configs through trainwise.config, which re-exports these."""

from __future__ import annotations

import datetime
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trainwise import config_values
from trainwise.findings import TrainwiseError

DATA_SUFFIXES = (".csv", ".parquet", ".npz")  # what data.source reads besides built-in names
TEXT_TABLES = (".csv", ".tsv", ".txt")  # read as CSV: a tab, ';' or '|' separator is sniffed
COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz")  # pandas reads these by suffix (.zst needs zstandard)
# the one phrase for the data files read, in every message that lists them (five had drifted:
# predict's named .csv.gz alone, review s14 VD8)
TABLE_FILES = (f"{TEXT_TABLES[0]} (also {', '.join(TEXT_TABLES[1:])}; each also compressed: "
               f"{', '.join(COMPRESSIONS)}), .parquet")
READABLE_DATA = f"{TABLE_FILES}, .npz"


def data_suffix(path: Path) -> str:
    """The suffix whose reader reads `path`: '.parquet', '.npz', '.csv' for a text table
    (.csv, .tsv, .txt: a tab export was refused as "rename it to .csv", audit s14 Z1) also
    when compressed ('a.csv.gz', whose Path.suffix is '.gz'), else ''. Any case: DATA.CSV."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[-1] in COMPRESSIONS and suffixes[0] in TEXT_TABLES:
        return ".csv"
    last = suffixes[-1] if suffixes else ""
    return ".csv" if last in TEXT_TABLES else last if last in DATA_SUFFIXES else ""


def data_stem(path: Path) -> str:
    """The name a run takes from its data file: 'sales' for sales.csv and for sales.csv.gz
    (Path.stem keeps '.csv' there: the run was named 'sales.csv'); else Path.stem."""
    suffixes = path.suffixes[-2:]
    if len(suffixes) == 2 and data_suffix(path) == ".csv" and \
            suffixes[-1].lower() in COMPRESSIONS:
        return path.name[: -len("".join(suffixes))]
    return path.stem


BUILT_IN_SOURCES = ("mnist1d", "digits", "breast_cancer", "wine")  # the one list of names:
# data/sources.BUILT_IN maps them to loaders; here so that `trainwise run wine` reads as
# data.source without importing the loaders


class ConfigError(TrainwiseError):
    """A config file or override is wrong; the message names the key and what is allowed."""


class _Section(BaseModel):
    # allow_inf_nan=False: inf passed gt=0 (train.lr = 1e400 reads as inf in TOML), and the
    # run then blamed the model and the data for the NaN it made (audit s15 K17)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads true as 1 and 1 as true: train.lr = true trained at lr 1.0, and
        run.checks = 0 turned the checks off (audit s15 K7). Refused both ways; text such as
        "3" for a number or yes/off for a bool (YAML's words) stays accepted: it means what
        it says."""
        kinds = _kinds(cls.model_fields[info.field_name].annotation)
        if isinstance(value, bool) and kinds & {int, float} and bool not in kinds:
            raise ValueError("a boolean is not a number here: write the number")
        if isinstance(value, int | float) and not isinstance(value, bool) and \
                kinds == {bool}:
            raise ValueError("a number is not a boolean here: write true or false")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        """An assignment in Python (cfg.train.max_epoch = 3) gets the error an override gets,
        a ConfigError naming the key with a did-you-mean, not pydantic's text and URL."""
        from trainwise.config_errors import explain, section_of  # it imports this module

        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(explain(exc, section_of(type(self)))) from None


def _kinds(annotation: Any) -> set[Any]:
    """The plain types a key's annotation admits: {float} for Annotated[float, ...] |
    Literal["auto"] (a Literal's values are not types, so it adds none)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return set()
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(arg) for arg in get_args(annotation)))
    return {annotation}


class DataConfig(_Section):
    source: str = "mnist1d"  # "mnist1d", "digits", "breast_cancer", "wine", a .csv/.parquet
    # table, a .npz of arrays (X, y; optional X_test, y_test, groups, times), or a folder with
    # one sub-folder of images per class
    target: str = "label"  # target column of a table
    # "auto": classification for a text target or one with <= 20 whole-number values, else
    # regression
    task: Literal["auto", "classification", "regression"] = "auto"
    # regression: "log" trains on log(target), log1p(target) when a target is 0 (a skewed
    # positive target such as a price spanning decades); errors and predictions are reported
    # back in the target's units
    target_transform: Literal["none", "log"] = "none"
    # 0 = all; a smaller number makes a quick subset run (classification: drawn per class,
    # each keeping enough rows for every part; stages.py)
    max_samples: int = Field(0, ge=0)
    # how a .npz array is read: auto = 2-D vector (or tokens, when its rows end in 0-padding),
    # 3-D sequence (N, T, C), 4-D image; tokens = integer token ids (N, T), 0 = padding, kept
    # as int64 for an embedding (never normalised). Tables: tokens = train on the free-text
    # columns alone, tokenised into words (auto does so only when nothing else is left)
    kind: Literal["auto", "vector", "sequence", "image", "tokens"] = "auto"
    image_size: int = Field(0, ge=0)  # images (folders, .npz): 0 = as stored (folders: the
    # most common size), else resized to NxN
    augment: Literal["auto", "none", "flip"] = "auto"  # auto: flips only for natural images
    # tables: text cells that mean "missing" (any case), e.g. ["?", "unknown"]; common markers
    # ("?", "n/a", ...) among numbers are read as missing with a warning, other text keeps the
    # column as text (with a warning that says to list them here if they mean missing)
    na_values: list[str] = []
    sep: str = ""  # CSV field separator; "" = ',' or, when the header has none, sniffed (; tab |)
    decimal: str = ""  # CSV decimal mark; "" = '.' or ',' sniffed with the separator
    encoding: str = ""  # CSV text encoding; "" = UTF-8 ("latin-1", "cp1252" for older exports)
    dayfirst: bool = False  # text dates such as 01/05/2024 read as 1 May (when both readings fit)
    drop_columns: list[str] = []  # tables: columns left out, named exactly as in the file
    # (an identifier, a leak, a column known only after the target); a name not in the file
    # is an error that names the closest column. Empty columns and copies are left out anyway

    @field_validator("source")
    @classmethod
    def _source_reads_as_data(cls, value: str) -> str:
        return config_values.data_source(value, BUILT_IN_SOURCES, READABLE_DATA)

    @field_validator("encoding")
    @classmethod
    def _encoding_is_known(cls, value: str) -> str:
        return config_values.encoding(value)


class SplitConfig(_Section):
    val_fraction: float = Field(0.1, gt=0, lt=0.5)  # taken from the training part
    test_fraction: float = Field(0.2, gt=0, lt=0.5)  # only when the source has no test part
    group_column: str = ""  # rows sharing a value never straddle two splits (except with
    # strategy "time": per series); "" = inferred from names/values (patient_id, ...), "none" =
    # rows are independent; .npz: its `groups` array; image folders: a column of
    # <folder>/groups.csv (file,<column>: cat/1.png,p7), used when the file exists
    time_column: str = ""  # validation after training in time; "" = inferred, "none" = no time
    # auto: group_time with a group and a time column (whole groups, later-starting ones in
    # val), time with a time column only; "time" with a group column splits each group's own
    # timeline (its later rows validate: groups straddle on purpose)
    strategy: Literal["auto", "random", "stratified", "group", "stratified_group", "time",
                      "group_time"] = "auto"
    cut: str | float | datetime.date = ""  # time split: a date ('2024-06-01') or a duration
    # back from each series' end ('30D'); group_time: the groups starting at/after it
    # validate; "" = the last val_fraction of each series' rows
    gap: str | float = ""  # time split: rows (group_time: groups starting) this close before
    # the cut are dropped ('7D', 3.0)
    seed: int = Field(-1, ge=-1, le=2**32 - 1)  # draws the split and the data.max_samples
    # subset; -1 = run.seed. Pin it (e.g. 0) to compare run.seed values on the same test
    # rows: a seed then varies training alone
    num_folds: int = Field(1, ge=1, le=20)  # > 1: k-fold cross-validation: the run trains,
    # tunes and tests on fold 0 (time folds, expanding windows: the last, the largest and
    # latest), then the crossval stage trains the same model on every other fold and reports
    # the validation score's mean and spread (stages_crossval.py)


    @field_validator("cut", "gap")
    @classmethod
    def _time_value_parses(cls, value: Any, info: Any) -> Any:
        return config_values.time_value(value, info.field_name)


def split_seed(config: Config) -> int:
    """split.seed, or run.seed when it is -1 (the default)."""
    return config.split.seed if config.split.seed >= 0 else config.run.seed


class ModelConfig(_Section):
    # "auto" (mlp for tables and vectors, cnn1d for sequences, cnn2d for images,
    # embedding_pool for tokens), one of those or "gru", or "package.module:Class" (your own
    # nn.Module)
    name: str = "auto"
    # the folder holding a "module:Class" module that is not on the Python path; "" = the
    # working folder or the config's folder, whichever holds it, written here (absolute) into
    # the run folder's config.toml, so --resume and a rerun find it from any working folder
    folder: str = ""
    width: int = Field(0, ge=0)  # hidden width / channels; 0 = sized from the data
    dropout: float = Field(0.1, ge=0, lt=1)  # the built-in baselines' dropout probability
    # weight init: "auto" = trainwise's policy (He for ReLU layers, orthogonal recurrences) for
    # the built-in baselines, your own class's weights kept as its __init__ made them
    # (pretrained or frozen layers stay); "policy" = the policy for every model (frozen layers
    # still kept); "keep" = never re-initialise
    init: Literal["auto", "policy", "keep"] = "auto"
    # written by trainwise.run(model=net): the class of the module that run trained
    # ('module:Class'); a rerun of this config without model= is refused, as model.name would
    # build another model. Leave it "" (remove it to train model.name instead)
    user_class: str = ""

    @field_validator("name")
    @classmethod
    def _own_class_is_module_colon_class(cls, value: str) -> str:
        """'package.module:Class' is checked here: a typo (':Net', '.x:Net', 'mynet:') is a
        config error, not an import that fails deep in the model stage."""
        if ":" not in value:
            return config_values.model_name(value)
        module, _, class_name = value.partition(":")
        if not (all(part.isidentifier() for part in module.split("."))
                and class_name.isidentifier()):
            raise ValueError("a name with a colon must be 'package.module:Class' (your own "
                             "nn.Module): a dotted module name, one colon, then the class "
                             "name, e.g. 'mynet:Net' for class Net in mynet.py")
        return value


class TrainConfig(_Section):
    max_epochs: int = Field(40, ge=1)  # at most; early stopping ends sooner (patience)
    batch_size: int = Field(128, ge=1)  # samples per optimizer step (all devices together);
    # left unset, a table with under 10 steps an epoch at 128 gets the largest power of two
    # (>= 32) that gives 10, and config.toml keeps it unset (commented out) so reruns agree
    lr: Annotated[float, Field(gt=0)] | Literal["auto"] = "auto"  # a finite number > 0, or
    # "auto" = chosen by the tune stage: the learning-rate range test, then short runs around
    # its point unless tune.short_runs = false
    weight_decay: float = Field(0.01, ge=0)  # AdamW, applied to weights only
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"  # the lr over the run
    patience: int = Field(8, ge=1)  # epochs without a better validation loss before stopping;
    # one-cycle counts them from 65% of max_epochs (its lr then at half its peak: earlier, the
    # validation loss is noisy by design); cosine and constant count from epoch 1
    max_minutes: float = Field(0.0, ge=0)  # wall-clock budget for training, checked at epoch
    # ends (stops when another epoch would pass it); 0 = no limit (train/time_budget.py)
    grad_clip: float = Field(0.0, ge=0)  # 0 = no clipping (the norm is still recorded)
    log_every: int = Field(10, ge=1)  # steps between host syncs of loss and gradient norm
    layer_every: int = Field(50, ge=0)  # steps between per-layer gradient norms; 0 = never
    # micro-batches per optimizer step: batch_size stays the effective batch of one step (split
    # over devices, then into this many pieces), so results do not depend on memory tricks
    accumulate_grad_batches: int = Field(1, ge=1)
    # classification: "balanced" weighs each class n / (k * n_c) in the loss, from the training
    # split's counts, so rare classes count as much as common ones (higher recall on them;
    # predicted probabilities then overstate the rare classes); "none" = every row the same
    class_weights: Literal["none", "balanced"] = "none"


# The fewest steps of a range test, in the API and the config alike: with fewer, the ramp
# has under 2 points per decade of the default 1e-6 .. 1 and the smoothing kernel, widened
# to 2.5 points, spans most of the curve.
MIN_NUM_STEPS = 10


class TuneConfig(_Section):
    num_steps: int = Field(100, ge=MIN_NUM_STEPS)  # steps of the exponential lr ramp
    start_lr: float = Field(1e-6, gt=0)  # where the ramp starts...
    end_lr: float = Field(1.0, gt=0)  # ...and ends, unless the loss diverges first
    num_seeds: int = Field(3, ge=1)  # repeats of the range test; the spread is reported
    short_runs: bool = True  # false: train at the range test's point, no short runs
    num_candidates: Annotated[int, Field(ge=3, le=5)] | Literal["auto"] = "auto"  # short
    # runs; auto: 3-5, as many as keep neighbouring candidates <= 2.5x apart
    short_run_epochs: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"  # per candidate;
    # auto: 15% of train.max_epochs (30% at a constant lr), raised to >= 50 steps where half
    # of max_epochs allows, else a warning; capped at 2000 steps unless the lr is constant
    # (tune/search.py); a number: that many whole epochs, never capped
    max_widenings: int = Field(2, ge=0, le=5)  # extra candidates while the best is at an edge
    batch_size: Literal["fixed", "auto"] = "fixed"  # auto: the largest power of two <= 256
    # that fits memory with headroom while samples/s still rises and leaves >= 10 steps per
    # epoch (replaces train.batch_size)

    @field_validator("batch_size", mode="before")
    @classmethod
    def _a_number_belongs_to_train(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f'tune.batch_size is how the batch size is chosen ("fixed" or '
                             f'"auto"); the size itself is train.batch_size = {value}')
        return value

    @model_validator(mode="after")
    def _ramp_goes_up(self) -> TuneConfig:
        if not self.start_lr < self.end_lr:
            raise ValueError(f"tune.start_lr ({self.start_lr:g}) must be below tune.end_lr "
                             f"({self.end_lr:g}); the default 1e-6 .. 1.0 covers AdamW on most "
                             "tasks")
        return self


# a file system's folder name holds 255 bytes: 16 for '<date>-<time>-', up to 4 for a '-NN'
# of runs started in the same second, and some to spare
MAX_RUN_NAME_BYTES = 200


class RunConfig(_Section):
    name: str = ""  # folder name suffix; default: the data source
    out_dir: str = "runs"  # where run folders go: <out_dir>/<date>-<time>-<name>/
    # seeds the initial weights, the data order, dropout and the range test, and (unless
    # split.seed is set) the split and the max_samples subset, so another seed tests on other
    # rows; numpy takes 0 .. 2**32 - 1
    seed: int = Field(0, ge=0, le=2**32 - 1)
    accelerator: str = "auto"  # Fabric accelerator: "auto", "cpu", "cuda", "mps"
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = chosen from the free cores
    checks: bool = True  # preflight checks before training (`trainwise check` runs them anyway)
    devices: int = Field(1, ge=1)  # processes per machine (CPU) or accelerators per machine
    num_nodes: int = Field(1, ge=1)  # machines: torchrun --nnodes, SLURM --nodes
    # "auto" = ddp when devices * num_nodes > 1; ddp_spawn / ddp_fork start the processes from
    # Python (notebooks, tests); fsdp shards a model too large for one device (GPU only)
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_fork", "fsdp"] = "auto"
    checkpoint_every_steps: int = Field(0, ge=0)  # 0 = a checkpoint at each epoch end only
    # Fabric precision of training, the range test, the short runs and the batch-size probe:
    # "bf16-mixed" autocasts to bfloat16 (GPUs since Ampere, recent CPUs), "16-mixed" to
    # float16 with a loss scaler (CUDA GPUs, e.g. T4, V100); faster, with less memory; weights
    # and optimizer state stay 32-bit
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"

    @field_validator("name")
    @classmethod
    def _name_is_one_folder_name(cls, value: str) -> str:
        """run.name ends the folder's name: 'a/b' made a nested folder and '../../x' wrote the
        run outside run.out_dir, which `trainwise compare runs/*` then choked on (audit s15
        K10). '..' is harmless without a separator (lr1e-3..1e-2 makes the folder
        <date>-<time>-lr1e-3..1e-2 inside run.out_dir; review VO11)."""
        if any(part in value for part in ("/", "\\", "\0")):
            raise ValueError("run.name ends the run folder's name (<date>-<time>-<name>), so "
                             "it cannot hold '/', '\\' or a NUL; to put runs elsewhere "
                             "set run.out_dir, e.g. run.out_dir=\"runs/ablation\"")
        size = len(value.encode("utf-8"))
        if size > MAX_RUN_NAME_BYTES:  # audit s16 S11: a 300-character name was a traceback
            raise ValueError(f"run.name is {size} bytes long; the run folder's name "
                             "(<date>-<time>-<name>) must fit the file system's 255, so "
                             f"run.name may hold at most {MAX_RUN_NAME_BYTES}: set a shorter "
                             "one, e.g. run.name=\"ablation_lr\"")
        return value

    @field_validator("out_dir")
    @classmethod
    def _out_dir_has_no_nul(cls, value: str) -> str:
        if "\0" in value:  # audit s16 S11: pathlib raised "embedded null byte" in a traceback
            raise ValueError("run.out_dir holds a NUL byte, which no folder name can; set it "
                             "to a folder path, e.g. run.out_dir=\"runs\"")
        return value


class Config(_Section):
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    tune: TuneConfig = TuneConfig()
    run: RunConfig = RunConfig()


def valid_keys() -> list[str]:
    return [
        f"{section}.{key}"
        for section, field in Config.model_fields.items()
        for key in field.annotation.model_fields  # type: ignore[union-attr]
    ]
