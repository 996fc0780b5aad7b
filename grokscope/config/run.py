"""The run configuration: one frozen dataclass that travels into every run store.

Every trainer flag is a field here, one to one, so a sweep varies fields with ``dataclasses.replace`` and a
store's ``config`` attribute rebuilds the exact run with :meth:`RunConfig.from_dict`.  Fields left ``None``
are resolved by :func:`resolve` (which needs the task's sizes) before training; the store keeps the resolved
values.  Presets are named partial configs (``PRESETS``); any explicit flag overrides them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from grokscope.errors import ConfigError

OPS = ("+", "-", "*", "/")
INPUT_FORMATS = ("zhu", "nanda", "singh")
MODELS = ("transformer", "mlp")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu")
NORMS = ("pre", "post", "none")
OPTIMIZERS = ("adamw", "adam", "sgd")
TASKS = ("modular", "equidistant", "equivariant", "text", "digits")
HIERARCHY_TASKS = ("equidistant", "equivariant")  # seed 001's Gaussian class hierarchies
VECTOR_TASKS = HIERARCHY_TASKS + ("digits",)  # feature-vector inputs
INITS = ("normal", "default")
LOSS_DTYPES = ("float64", "float32")
LOSSES = ("ce", "stablemax", "mse")
KD_SETUPS = ("none", "single", "joint", "continual")
KD_POSITIONS = ("operator", "answer")


def is_prime(n: int) -> bool:
    """True when ``n`` is prime (trial division; moduli here are small)."""
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


# --- field roles ----------------------------------------------------------------------------------------
# Every field declares what it is to the rest of grokscope (its metadata), so no module keeps a list of
# config keys that must track this class: sweeps stack runs that differ only in ``member`` fields, the
# step-wise analysis groups runs by role, analyze copies the ``column`` fields into its rows, a distilled
# student's continual setup shares its teacher's MODEL fields.
TASK = "task"  # which examples and which test set: runs of one study agree on these
DATA = "data"  # how the training examples are drawn or encoded, beyond their number (subclass shares, moduli)
SIZE = "size"  # how many training examples: the data-size axis of a CDS study
MODEL = "model"  # the architecture
TRAINING = "training"  # initialisation, optimisation, loss and schedule
SEED = "seed"  # the run's seed (data subset, initialisation, batch order)
RECORDING = "recording"  # what is recorded and where the run executes: no effect on the trajectory
DISTILL = "distill"  # knowledge distillation (seed 000): teachers and the loss term
ROLES = (TASK, DATA, SIZE, MODEL, TRAINING, SEED, RECORDING, DISTILL)
MODULAR, TEXT = ("modular",), ("text",)


def spec(default: Any, role: str, *, help: str = "", tasks: tuple[str, ...] = (), member: bool = False,
         column: int = 0, positive: bool = False, compare: bool = True) -> Any:
    """A RunConfig field and its metadata.

    ``help``: the field's one-line explanation (the CLI's option help); ``tasks``: the only tasks the field
    means something for (a ``None``-default field must stay unset for the others; analyze shows None
    there); ``member``: may differ between runs trained together as one stacked model; ``column``: the
    field's position (1, 2, …) among the config columns of every row ``grokscope analyze`` prints (0: not
    shown); ``positive``: must be positive when set (at least 1 for integers).
    """
    assert role in ROLES, role
    return field(default=default, compare=compare, metadata={
        "role": role, "help": help, "tasks": tasks, "member": member, "column": column, "positive": positive})


def column_names(tasks: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The config fields analyze shows in every row, in their ``column`` order (only those of ``tasks``)."""
    shown = [f for f in fields(RunConfig) if f.metadata["column"] and (tasks is None or f.metadata["tasks"] == tasks)]
    return tuple(f.name for f in sorted(shown, key=lambda f: f.metadata["column"]))


def field_names(role: str | None = None, **flags: Any) -> tuple[str, ...]:
    """RunConfig's fields, in declaration order, with this ``role`` and these metadata values.

    Examples
    --------
    >>> field_names(SIZE)
    ('n_train', 'frac')
    >>> field_names(tasks=TEXT)[:2]
    ('data', 'test_data')
    """
    return tuple(f.name for f in fields(RunConfig)
                 if (role is None or f.metadata["role"] == role)
                 and all(f.metadata[key] == value for key, value in flags.items()))


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run.  Defaults are seed 002's (Zhu et al.) modular setup."""

    # --- task -----------------------------------------------------------------------------------------
    task: str = spec("modular", TASK, column=1,
                     help="modular (seeds 002/000), equidistant/equivariant (seed 001), text (local files), digits")
    op: str = spec("+", TASK, tasks=MODULAR, column=2,
                   help="a ∘ b mod p, ∘ in + - * / (÷ multiplies by the modular inverse, b ≠ 0)")
    p: int = spec(113, TASK, tasks=MODULAR, column=3, help="the modulus; must be prime for ÷")
    input_format: str = spec("zhu", TASK, tasks=MODULAR, column=4,
                             help="zhu: `a + b % p =` (answer at `=`); nanda: `a b =`; singh: `a b @ P` (answer at P)")
    moduli: str | None = spec(None, DATA,
                              help="singh: the study's moduli sharing one vocabulary, e.g. 113,107 (None: p alone)")
    train_ratio: float = spec(0.75, TASK, help="share of all pairs in the train pool; the rest is the fixed test set")
    split_seed: int = spec(0, TASK, help="seeds the pool/test split, shared by every run of a study")
    n_train: int | None = spec(None, SIZE, member=True, column=8, positive=True,
                               help="training examples drawn from the pool (None: from frac)")
    frac: float | None = spec(None, SIZE, member=True, column=9,
                              help="share of the pool to train on, in (0, 1] (None with n_train None: 1.0)")
    # --- seed 001 class hierarchies (task equidistant / equivariant) -------------------------------------
    downsample_frac: float | None = spec(None, DATA, tasks=HIERARCHY_TASKS, member=True, column=10,
                                         help="f of eq. 1: down-sampled subclasses get f times the others (None: 1)")
    n_downsampled: int | None = spec(None, DATA, tasks=HIERARCHY_TASKS,
                                     help="down-sampled subclasses per class, the last ones [NF] (None: 1)")
    noise_std: float | None = spec(None, TASK, tasks=HIERARCHY_TASKS, positive=True,
                                   help="std of the isotropic noise around each Gaussian mean [NF] (None: 0.25)")
    n_test: int | None = spec(None, TASK, tasks=HIERARCHY_TASKS, positive=True,
                              help="size of the balanced test set (None: 10,000)")
    # --- text classification (task text) ----------------------------------------------------------------
    data: str | None = spec(None, TASK, tasks=TEXT,
                            help="CSV/TSV/JSONL/Parquet file with a text and a label column, or hf:NAME[:SPLIT]")
    test_data: str | None = spec(None, TASK, tasks=TEXT,
                                 help="the test file (None: split data by train_ratio with split_seed)")
    text_col: str | None = spec(None, TASK, tasks=TEXT,
                                help="text column name or position (None: detect text/review/content …)")
    label_col: str | None = spec(None, TASK, tasks=TEXT,
                                 help="label column name or position (None: detect label/sentiment/stars …)")
    max_len: int | None = spec(None, TASK, tasks=TEXT, positive=True,
                               help="tokens per text, [CLS] included; longer texts are truncated (None: 256)")
    vocab_size: int | None = spec(None, TASK, tasks=TEXT, positive=True,
                                  help="WordPiece vocabulary learned from the training pool's texts (None: 30522)")
    # --- model ----------------------------------------------------------------------------------------
    model: str = spec("transformer", MODEL, column=5,
                      help="modular: decoder on tokens, MLP on one-hot operands; others: encoder or MLP")
    n_layers: int = spec(1, MODEL, column=6, positive=True, help="transformer blocks, or MLP hidden layers")
    d_model: int = spec(128, MODEL, column=7, positive=True, help="residual width, or MLP hidden width")
    n_heads: int = spec(4, MODEL, positive=True, help="attention heads; d_model must be divisible by them")
    d_mlp: int | None = spec(None, MODEL, positive=True, help="transformer MLP width (None: 4 * d_model)")
    act: str = spec("gelu_tanh", MODEL, help="gelu (exact erf), gelu_tanh (GPT-1's gelu_new), relu")
    norm: str = spec("post", MODEL, help="LayerNorm placement: post (GPT-1), pre (GPT-2), none (Nanda)")
    tied: bool = spec(True, MODEL, help="unembedding tied to the token embedding")
    n_ctx: int | None = spec(None, MODEL, positive=True,
                             help="learned positions (None: the sequence length); GPT-1 config uses 128")
    n_tokens: int | None = spec(None, MODEL, tasks=VECTOR_TASKS, positive=True,
                                help="vector inputs to a transformer: split into this many tokens (None: 9, digits 8)")
    init: str = spec("normal", TRAINING,
                     help="normal: N(0, init_std²) weights; default: torch's layer defaults (init_std unused)")
    init_std: float = spec(0.02, TRAINING, member=True, positive=True,
                           help="N(0, std²) for weights, zeros for biases, ones for LayerNorm gains")
    alpha: float = spec(1.0, TRAINING, member=True, column=12, positive=True,
                        help="every initial parameter multiplied by alpha (seed 002 eq. 2)")
    # --- optimisation ---------------------------------------------------------------------------------
    optimizer: str = spec("adamw", TRAINING, help="adamw (decoupled decay), adam (L2 decay) or sgd")
    lr: float = spec(1e-3, TRAINING, member=True, column=13, positive=True, help="learning rate (constant)")
    beta1: float = spec(0.9, TRAINING, member=True, help="Adam's β1")
    beta2: float = spec(0.98, TRAINING, member=True, help="Adam's β2 (seed 002: 0.98)")
    weight_decay: float = spec(1.0, TRAINING, member=True, column=11, help="weight decay λ")
    momentum: float = spec(0.0, TRAINING, help="SGD only")
    batch_size: int | None = spec(None, TRAINING, positive=True, help="None: full batch (the papers' setting)")
    steps: int = spec(10_000, TRAINING, positive=True, help="optimiser updates; metrics are logged for steps 0..steps")
    eval_every: int = spec(1, RECORDING, positive=True,
                           help="test-set evaluation cadence in steps (the papers evaluate every step)")
    loss: str = spec("ce", TRAINING,
                     help="ce (softmax cross-entropy), stablemax (Prieto et al.; test loss ce), mse (one-hot, "
                          "Omnigrok)")
    loss_dtype: str = spec("float64", TRAINING, help="float32 log-softmax underflows once train loss < ~1e-7")
    seed: int = spec(0, SEED, member=True, column=14, help="data subset, initialisation and batch order")
    device: str = spec("auto", RECORDING, help="auto: cuda, then mps, then cpu")
    # --- checkpoints ----------------------------------------------------------------------------------
    ckpt_every: int | None = spec(None, RECORDING, positive=True,
                                  help="checkpoint every K steps (None: steps // 100, at least 1)")
    ckpt_early: int = spec(16, RECORDING, help="extra log-spaced checkpoints in the first ckpt_every steps")
    on_divergence: str = spec("stop", TRAINING,
                              help="a non-finite train loss: stop (status diverged) or continue logging")
    # --- distillation (grokscope distill, seed 000) -------------------------------------------------------
    kd_setup: str = spec("none", DISTILL,
                         help="none (plain training), single (teacher → student), joint (two teachers), continual")
    teacher: str | None = spec(None, DISTILL, help="run store of the teacher (joint: the first task's, p1)")
    teacher2: str | None = spec(None, DISTILL,
                                help="joint only: run store of the second task's teacher (p2, the student's own task)")
    teacher_ckpt: int = spec(-1, DISTILL, help="checkpoint index of the teachers' weights (-1: the last)")
    kd_alpha: float = spec(0.5, DISTILL,
                           help="L = (1 − α)·CE + α·KL(q_T ‖ q_S); 0: no distillation, 1: pure distillation")
    temperature: float = spec(1.0, DISTILL, help="t in q = softmax(logits / t) (the KL is not rescaled by t²)")
    kd_position: str = spec("operator", DISTILL,
                            help="where q_T, q_S are read: operator (the @ token, seed 000) or answer")
    preset: str | None = spec(None, RECORDING, compare=False, help="the preset this config started from")

    def __post_init__(self) -> None:
        _choice("task", self.task, TASKS)
        _choice("op", self.op, OPS)
        _choice("input_format", self.input_format, INPUT_FORMATS)
        _choice("model", self.model, MODELS)
        _choice("act", self.act, ACTIVATIONS)
        _choice("norm", self.norm, NORMS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss_dtype", self.loss_dtype, LOSS_DTYPES)
        _choice("loss", self.loss, LOSSES)
        _choice("init", self.init, INITS)
        _choice("on_divergence", self.on_divergence, ("stop", "continue"))
        if self.p < 3:
            raise ConfigError(f"p must be at least 3, got {self.p}")
        self._check_moduli()
        if self.op == "/" and not is_prime(self.p):
            raise ConfigError(f"op '/' needs a prime p (modular inverse), got composite p={self.p}")
        if not 0 < self.train_ratio < 1:
            raise ConfigError(f"train_ratio must be in (0, 1), got {self.train_ratio}")
        if self.frac is not None and not 0 < self.frac <= 1:
            raise ConfigError(f"frac must be in (0, 1], got {self.frac}")
        if self.n_train is not None and self.n_train < 1:
            raise ConfigError(f"n_train must be positive, got {self.n_train}")
        if self.seed < 0 or self.split_seed < 0:  # numpy's seed sequences take non-negative integers only
            raise ConfigError(f"seeds must be non-negative, got seed={self.seed}, split_seed={self.split_seed}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["positive"] and value is not None and not (value >= 1 if "int" in str(f.type) else value > 0):
                raise ConfigError(f"{f.name} must be positive, got {value}")
        if self.ckpt_early < 0:
            raise ConfigError(f"ckpt_early must be non-negative, got {self.ckpt_early}")
        if self.model == "transformer" and self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be non-negative, got {self.weight_decay}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError(f"betas must be in [0, 1), got ({self.beta1}, {self.beta2})")
        if self.device not in ("auto", "cpu", "mps") and not self.device.startswith("cuda"):
            raise ConfigError(f"device must be auto, cpu, mps or cuda[:N], got {self.device!r}")
        self._check_task_fields()
        self._check_distillation()

    def _check_task_fields(self) -> None:
        """Each task's own fields: valid values, and left unset for the other tasks."""
        for f in fields(self):
            tasks = f.metadata["tasks"]
            if tasks and f.default is None and getattr(self, f.name) is not None and self.task not in tasks:
                raise ConfigError(f"{f.name} applies to --task {'/'.join(tasks)}, not {self.task}")
        if self.task == "text" and not self.data:
            raise ConfigError("task text needs --data FILE (CSV, TSV, JSONL or Parquet) or --data hf:NAME")
        if self.task == "text" and self.model != "transformer":  # token ids, not features
            raise ConfigError(f"task text trains the encoder: use --model transformer, not {self.model}")
        if self.n_tokens is not None and self.model != "transformer":
            raise ConfigError(f"n_tokens splits vector inputs into an encoder's tokens; --model {self.model} "
                              "takes the whole vector")
        if self.task in HIERARCHY_TASKS and self.frac is not None:
            raise ConfigError(f"task {self.task} draws fresh samples: give --n-train, not --frac")
        if self.downsample_frac is not None and not 0 <= self.downsample_frac <= 1:
            raise ConfigError(f"downsample_frac must be in [0, 1], got {self.downsample_frac}")
        if self.n_downsampled is not None and self.n_downsampled < 0:
            raise ConfigError(f"n_downsampled must be non-negative, got {self.n_downsampled}")
        if self.max_len is not None and self.max_len < 2:
            raise ConfigError(f"max_len must leave room for [CLS] and one token, got {self.max_len}")
        if self.vocab_size is not None and self.vocab_size < 8:
            raise ConfigError(f"vocab_size must be at least 8 (4 special tokens and some words), got {self.vocab_size}")
        if self.loss == "mse" and self.kd_setup != "none":
            raise ConfigError("distillation trains on cross-entropy; loss mse is for plain training")

    def _check_moduli(self) -> None:
        """Canonicalise ``moduli`` (ascending, comma-separated) so equal studies give equal vocabularies."""
        if self.moduli is None:
            return
        if self.input_format != "singh":
            raise ConfigError(f"moduli applies to input_format singh, not {self.input_format!r}")
        try:
            values = sorted({int(m) for m in str(self.moduli).replace(",", " ").split()})
        except ValueError:
            raise ConfigError(f"moduli must be integers separated by commas, got {self.moduli!r}") from None
        if not values or values[0] < 3:
            raise ConfigError(f"moduli must be integers of at least 3, got {self.moduli!r}")
        if self.p not in values:
            raise ConfigError(f"p={self.p} is not among moduli {self.moduli!r} (the study's shared vocabulary); "
                              f"give --moduli with every modulus of the study, e.g. --moduli {self.p}")
        object.__setattr__(self, "moduli", ",".join(map(str, values)))

    def _check_distillation(self) -> None:
        _choice("kd_setup", self.kd_setup, KD_SETUPS)
        _choice("kd_position", self.kd_position, KD_POSITIONS)
        if not 0 <= self.kd_alpha <= 1:
            raise ConfigError(f"kd_alpha must be in [0, 1], got {self.kd_alpha}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if self.kd_setup == "none":
            for name in ("teacher", "teacher2", "teacher_ckpt", "kd_alpha", "temperature", "kd_position"):
                if getattr(self, name) != getattr(RunConfig, name):
                    raise ConfigError(f"{name} applies to distillation runs only (grokscope distill)")
            return
        if self.teacher is None:
            raise ConfigError(f"kd_setup {self.kd_setup!r} needs a teacher run store")
        if (self.teacher2 is not None) != (self.kd_setup == "joint"):
            raise ConfigError("joint distillation takes two teachers (teacher and teacher2), the others one")
        if self.task != "modular":
            raise ConfigError(f"distillation is for modular tasks (seed 000), not task {self.task}")
        if self.model != "transformer":
            raise ConfigError("distillation reads logits at token positions: it needs model transformer")
        if self.kd_position == "operator" and self.input_format == "nanda":
            raise ConfigError("input_format nanda has no operator token; use kd_position answer")
        if self.kd_position == "operator" and self.kd_alpha == 1:
            raise ConfigError("kd_alpha 1 at the operator position never trains the answer; use kd_position "
                              "answer for pure distillation")

    def study_moduli(self) -> tuple[int, ...]:
        """The moduli sharing this run's vocabulary, ascending (``(p,)`` when ``moduli`` is None)."""
        return (self.p,) if self.moduli is None else tuple(int(m) for m in self.moduli.split(","))

    # --- conversions ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what the store keeps under ``config``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**data)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose from {', '.join(allowed)}")
