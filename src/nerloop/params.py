"""Load and validate ``params.yaml``: one section per stage, unknown keys rejected.

Validation happens up front so that a typo (``learnig_rate``) or an out-of-range value
(``alpha: 1.5``) stops the stage with a message naming the key, before any output is
touched. The schema is written with pydantic models (``extra = forbid``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic.v1 import BaseModel, Field, ValidationError, confloat, conint, validator
from pydantic.v1.fields import SHAPE_LIST, SHAPE_SINGLETON, ModelField

from nerloop.data.tokenizers import TokenizerName
from nerloop.errors import ParamsError

PARAMS_FILE = Path("params.yaml")

# The names select.strategy and select.measure accept. They are spelt out here, not read from the registries in
# nerloop.selection (whose scoring imports this module), so that the params layer needs nothing above it and a
# typo still fails at load time; tests/test_strategies.py holds them equal to STRATEGIES, MEASURES and MC_MEASURES.
STRATEGY_NAMES = ("random", "uncertainty", "hybrid")
MC_MEASURE_NAMES = ("bald", "vote_entropy")  # committee measures: scored only with score.mc_dropout_passes > 0
MEASURE_NAMES = ("entropy_mean", "entropy_max", "least_confidence", "margin", "mnlp", "boundary", "entity",
                 *MC_MEASURE_NAMES)


def _strict(value: Any, kind: type) -> Any:
    """Refuse what pydantic would coerce silently: ``epochs: 2.5`` -> 2, ``true`` -> 1, ``"3"`` -> 3."""
    if value is None:
        return value
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    if kind is not bool and isinstance(value, bool):
        raise ValueError(f"must be a number, got the boolean {value!r}")
    if kind is int and not isinstance(value, int):
        raise ValueError(f"must be a whole number, got {value!r}")
    if kind is float and not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    return value


class Section(BaseModel):
    # Options added after results were recorded, with their off value: dict() leaves them out while they are off,
    # so that what is written or compared from it (a benchmark's config, which decides whether its earlier runs are
    # resumed; the dataset card's select table) stays as it was for a project that does not use them.
    OFF_BY_DEFAULT: ClassVar[dict[str, Any]] = {}

    class Config:
        extra = "forbid"
        validate_assignment = True

    def dict(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        out = super().dict(**kwargs)
        return {k: v for k, v in out.items() if k not in self.OFF_BY_DEFAULT or v != self.OFF_BY_DEFAULT[k]}

    @validator("*", pre=True)
    def _no_coercion(cls, value: Any, field: ModelField) -> Any:  # noqa: N805
        kind = next((k for k in (bool, int, float) if isinstance(field.type_, type) and issubclass(field.type_, k)),
                    None)
        if kind is None:
            return value
        if field.shape == SHAPE_LIST and isinstance(value, list):
            return [_strict(v, kind) for v in value]
        return _strict(value, kind) if field.shape == SHAPE_SINGLETON else value


class DataParams(Section):
    """Where the raw inputs are and how to read them (stage ``prepare``)."""

    seed: str
    pool: str
    gold: str
    format: Literal["auto", "conll", "jsonl", "text"] = "auto"
    scheme: Literal["auto", "iob1", "iob2"] = "auto"
    text_mode: Literal["sentence", "document"] = "sentence"
    labels: list[str] | None = None  # entity types; None = inferred from seed + gold, then fixed
    tokenizer: TokenizerName = "default"  # splits plain text (.txt, JSONL "text"): default | social | biomedical
    # README "Cold start from patterns": a JSONL patterns file or a .txt/.tsv gazetteer; None = no patterns
    patterns: str | None = None
    pattern_attr: Literal["ORTH", "LOWER"] = "ORTH"  # phrases and gazetteer names: exact case, or LOWER: any case
    pattern_confidence: confloat(ge=0, le=1) = 0.5  # type: ignore[valid-type]  # shown with each pattern span


class ModelParams(Section):
    """The base encoder every cycle starts from."""

    base: str = "minilm"  # "minilm" = the bundled all-MiniLM-L6-v2; or a local checkpoint folder
    max_length: conint(ge=8, le=4096) = 128  # type: ignore[valid-type]
    word_shape: bool = False  # each word's case pattern as a token-type embedding (README "Choosing an encoder")
    head: Literal["softmax", "crf"] = "softmax"  # crf: a linear-chain CRF over the words (README "Training recipe")


class TrainParams(Section):
    OFF_BY_DEFAULT: ClassVar[dict[str, Any]] = {"entity_swap": 0.0, "partial": "mask"}

    seed: int = 42
    # fitted: one run on all labels for the epoch count earlier probes agree on | refit | holdout (README)
    recipe: Literal["fitted", "refit", "holdout"] = "fitted"
    min_probes: conint(ge=1, le=20) = 2  # type: ignore[valid-type]  # fitted: probe until this many exist
    probe_growth: confloat(gt=1) = 4.0  # type: ignore[valid-type]  # fitted: probe again at this x the largest probe
    # fitted: each probe's best epoch x (probe size / labelled size) ** epoch_scaling; 0 = unscaled (README)
    epoch_scaling: confloat(ge=0, le=1) = 0.0  # type: ignore[valid-type]
    # fitted: never fewer epochs than this, however large the labelled set (README "Training recipe")
    min_epochs: conint(ge=1, le=100) = 1  # type: ignore[valid-type]
    learning_rate: confloat(gt=0, lt=1) = 1e-4  # type: ignore[valid-type]
    epochs: conint(ge=1, le=100) = 10  # type: ignore[valid-type]
    batch_size: conint(ge=1, le=1024) = 16  # type: ignore[valid-type]
    validation_share: confloat(gt=0, lt=1) = 0.2  # type: ignore[valid-type]
    early_stopping_patience: conint(ge=0) = 2  # type: ignore[valid-type]
    weight_decay: confloat(ge=0, lt=1) = 0.01  # type: ignore[valid-type]
    warmup_ratio: confloat(ge=0, lt=1) = 0.1  # type: ignore[valid-type]
    class_weighting: Literal["none", "inverse_sqrt", "inverse"] = "inverse_sqrt"
    # add this share of the training sentences again as entity-swapped copies (README "Training recipe"); 0 = off
    entity_swap: confloat(ge=0, le=1) = 0.0  # type: ignore[valid-type]
    # partly labelled sentences (select.unit: window): mask = words outside the window are not trained on (-100),
    # fill = trained on the pre-annotation kept there (README "Subsequence selection")
    partial: Literal["mask", "fill"] = "mask"


class EvaluateParams(Section):
    batch_size: conint(ge=1) = 64  # type: ignore[valid-type]


class ScoreParams(Section):
    """Stage ``score``: how the pool is scored; ``engine`` says where the model runs, not what it computes."""

    engine: Literal["local", "ray"] = "local"  # ray: an actor pool on the cluster named by RAY_ADDRESS
    ray_actors: conint(ge=0) = 0  # type: ignore[valid-type]  # 0 = one per GPU, else one per ray_cpus_per_actor CPUs
    ray_cpus_per_actor: conint(ge=1) = 1  # type: ignore[valid-type]
    ray_shards: str | None = None  # pool and score shards: None = .nerloop/ray-shards, a shared folder, or s3://...
    batch_size: conint(ge=1) = 64  # type: ignore[valid-type]
    subsample: conint(ge=0) = 0  # type: ignore[valid-type]  # 0 = score the whole pool
    mc_dropout_passes: conint(ge=0, le=100) = 0  # type: ignore[valid-type]  # 0 = no BALD
    seed: int = 42


class SelectParams(Section):
    OFF_BY_DEFAULT: ClassVar[dict[str, Any]] = {"balance_types": False, "unit": "sentence", "window_tokens": 8}

    strategy: str = "hybrid"
    measure: str = "mnlp"
    alpha: confloat(ge=0, le=1) = 0.7  # type: ignore[valid-type]
    batch_size: int | list[int] = 100  # sentences per cycle; a list is a schedule: cycle i takes entry i (last repeats)
    token_budget: conint(ge=1) | None = None  # type: ignore[valid-type]
    k: conint(ge=1) = 20  # type: ignore[valid-type]
    rare_bonus: confloat(ge=0) = 0.0  # type: ignore[valid-type]
    rare_share: confloat(gt=0, le=1) = 0.1  # type: ignore[valid-type]  # types under this share of seed entities are rare
    pattern_bonus: confloat(ge=0) = 0.0  # type: ignore[valid-type]  # for sentences with a data.patterns match
    seed: int = 42
    balance_types: bool = False  # spread the batch round-robin over the sentences' predicted entity types
    # window: ask only for each chosen sentence's most uncertain words (README "Subsequence selection")
    unit: Literal["sentence", "window"] = "sentence"
    window_tokens: conint(ge=1) = 8  # type: ignore[valid-type]  # window: its length in words before widening

    @validator("strategy")  # names checked here, so a typo fails before any training, not at select
    def _known_strategy(cls, name: str) -> str:  # noqa: N805
        if name not in STRATEGY_NAMES:
            raise ValueError(f"{name!r} is not a strategy; choose one of {', '.join(STRATEGY_NAMES)}")
        return name

    @validator("measure")
    def _known_measure(cls, name: str) -> str:  # noqa: N805
        if name not in MEASURE_NAMES:
            raise ValueError(f"{name!r} is not an uncertainty measure; choose one of {', '.join(MEASURE_NAMES)}")
        return name

    @validator("batch_size", pre=True)
    def _batch_schedule(cls, value: Any) -> Any:  # noqa: N805
        """A whole number >= 1, or a non-empty list of them (small batches early, larger ones later)."""
        for v in value if isinstance(value, list) else [value]:
            _strict(v, int)
            if v < 1:
                raise ValueError(f"ensure this value is greater than or equal to 1, got {v}")
        if value == []:
            raise ValueError("an empty schedule selects nothing: give a number or a list of numbers")
        return value

    def batch_size_for(self, cycle: int) -> int:
        """Sentences to select for ``cycle`` (1 = the first batch after the seed set)."""
        schedule = self.batch_size if isinstance(self.batch_size, list) else [self.batch_size]
        return schedule[min(max(cycle, 1), len(schedule)) - 1]


class SimulatedParams(Section):
    answers: str  # a labelled corpus the simulated annotator answers from
    state_dir: str = "annotation/simulated"


class TeamParams(Section):
    """What a team backend (Doccano, Label Studio) shares: who annotates, how a batch is shared out, QC."""

    project: str = "nerloop"  # prefix: one project per annotator (<project>-<name>) and <project>-review
    # who annotates; empty = the team added with `nerloop <tool> annotator add`
    annotators: list[str] = []
    weights: dict[str, confloat(gt=0)] = {}  # type: ignore[valid-type]  # relative share; unnamed = 1
    qc_share: confloat(ge=0, le=1) = 0.1  # type: ignore[valid-type]
    disagreement_policy: Literal["review", "hold"] = "review"  # review: <project>-review, resolved there
    reviewer: str | None = None  # account that resolves disagreements; None = nerloop's own (the lead)
    break_s: confloat(gt=0) = 300.0  # type: ignore[valid-type]  # longer gaps between confirmations are breaks
    page_size: conint(ge=1, le=10000) = 1000  # type: ignore[valid-type]
    timeout_s: confloat(gt=0) = 30.0  # type: ignore[valid-type]

    @validator("weights")  # a field validator, so the error names annotation.<tool>.weights
    def _weights_name_annotators(cls, weights: dict[str, float], values: dict[str, Any]) -> dict[str, float]:  # noqa: N805
        named = values.get("annotators") or []
        unknown = sorted(set(weights) - set(named)) if named else []
        if unknown:
            raise ValueError(f"weights name {unknown}, who are not in the annotators {named}")
        return weights


class DoccanoParams(TeamParams):
    """Doccano: server, team and how a batch is shared out. Credentials never live here (env or .doccano/)."""

    url: str = "http://127.0.0.1:8000"  # NERLOOP_DOCCANO_URL overrides; credentials only from env / .doccano


class LabelStudioParams(TeamParams):
    """Label Studio: server, team and how a batch is shared out. The token never lives here (env or .label-studio/)."""

    url: str = "http://127.0.0.1:8080"  # NERLOOP_LABEL_STUDIO_URL overrides; token only from env / .label-studio
    email_domain: str = "nerloop.local"  # `annotator add NAME` signs up NAME@<email_domain> (logins are e-mails)


class AnnotationParams(Section):
    backend: Literal["simulated", "doccano", "label_studio"] = "simulated"
    # a cycle stops (nothing committed) when more than this share of one cycle's exported sentences is held back
    max_held_back_share: confloat(ge=0, le=1) = 0.1  # type: ignore[valid-type]
    # README "Accept in one key": sentences whose pre-annotation the model is this sure of are sent as
    # "accept or edit" (annotation/core/accept.py); None = off
    accept_threshold: confloat(gt=0, le=1) | None = None  # type: ignore[valid-type]
    accept_share: confloat(gt=0, le=1) = 1.0  # type: ignore[valid-type]  # at most this share of a batch, surest first
    simulated: SimulatedParams | None = None
    doccano: DoccanoParams = Field(default_factory=DoccanoParams)
    label_studio: LabelStudioParams = Field(default_factory=LabelStudioParams)

    @validator("simulated", always=True)  # a field validator, so the error names annotation.simulated
    def _backend_configured(cls, simulated: SimulatedParams | None, values: dict[str, Any]) -> Any:  # noqa: N805
        if values.get("backend") == "simulated" and simulated is None:
            raise ValueError("backend 'simulated' needs an annotation.simulated section with 'answers'")
        return simulated


class FinalParams(Section):
    include_gold: bool = True
    ratios: list[confloat(gt=0, lt=1)] = [0.8, 0.1, 0.1]  # type: ignore[valid-type]
    seed: int = 42
    conflict_policy: Literal["majority", "latest", "review"] = "review"
    # majority: a surface string gets its dominant type everywhere only if that type holds this share of its mentions
    type_majority: confloat(gt=0.5, le=1) = 0.8  # type: ignore[valid-type]
    train_final_model: bool = False
    license: str = "cc-by-4.0"
    language: str = "en"
    pretty_name: str = "nerloop dataset"
    attribution: str | None = None  # where the raw sentences and labels come from (source, licence, citation)

    @validator("ratios")  # a field validator, so the error names final.ratios, not just final
    def _ratios_sum_to_one(cls, ratios: list[float]) -> list[float]:  # noqa: N805
        if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be three numbers (train, validation, test) summing to 1, got {ratios}")
        return ratios


class ForecastParams(Section):
    """When to stop (stage evaluate): the learning-curve forecast and the stabilising-predictions rule."""

    target_f1: confloat(gt=0, le=1) = 0.75  # type: ignore[valid-type]
    f1_noise: confloat(ge=0, lt=1) = 0.01  # type: ignore[valid-type]  # sd of one gold-F1 measurement: band floor
    resamples: conint(ge=20, le=5000) = 200  # type: ignore[valid-type]
    stop_set_size: conint(ge=10) = 500  # type: ignore[valid-type]
    # calibrated on the stored CoNLL-2003 runs (benchmarks/stopping_check.py); the paper's 0.99 / 3 never fired there
    kappa_threshold: confloat(gt=0, le=1) = 0.96  # type: ignore[valid-type]
    window: conint(ge=1, le=20) = 1  # type: ignore[valid-type]
    seed: int = 42


class Params(Section):
    data: DataParams
    model: ModelParams = Field(default_factory=ModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    score: ScoreParams = Field(default_factory=ScoreParams)
    select: SelectParams = Field(default_factory=SelectParams)
    annotation: AnnotationParams
    final: FinalParams = Field(default_factory=FinalParams)
    forecast: ForecastParams = Field(default_factory=ForecastParams)

    @validator("select")  # declared after score, so score's values are known here
    def _bald_needs_passes(cls, select: SelectParams, values: dict[str, Any]) -> SelectParams:  # noqa: N805
        score = values.get("score")
        if select.measure in MC_MEASURE_NAMES and score is not None and score.mc_dropout_passes == 0:
            raise ValueError(f"measure {select.measure!r} needs score.mc_dropout_passes > 0 (e.g. 10)")
        data = values.get("data")
        if select.pattern_bonus > 0 and data is not None and data.patterns is None:
            raise ValueError("pattern_bonus > 0 favours sentences with pattern matches, but data.patterns names no "
                             "patterns file")
        return select


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; raise ParamsError naming the first bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ParamsError("(file)", f"{path} not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError("(file)", f"{path} is not valid YAML: {exc}") from None
    try:
        return Params.parse_obj(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"] if p != "__root__")
        msg = "unknown key" if err["type"] == "value_error.extra" else err["msg"]
        raise ParamsError(key or "(top level)", msg) from None
