"""params.yaml validation: defaults, unknown keys and out-of-range values, each naming its key."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nerloop.errors import ParamsError
from nerloop.params import Params, load_params

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
MINIMAL: dict[str, Any] = {
    "data": {"seed": "data/raw/seed.conll", "pool": "data/raw/pool.jsonl", "gold": "data/raw/gold.conll"},
    "annotation": {"backend": "simulated", "simulated": {"answers": "data/raw/pool_answers.conll"}},
}


def _load(tmp_path: Path, mutate: Callable[[dict[str, Any]], object] | None = None) -> Params:
    raw = copy.deepcopy(MINIMAL)
    if mutate is not None:
        mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_params(path)


def _error(tmp_path: Path, mutate: Callable[[dict[str, Any]], object]) -> ParamsError:
    with pytest.raises(ParamsError) as info:
        _load(tmp_path, mutate)
    return info.value


def test_minimal_params_get_defaults(tmp_path: Path) -> None:
    p = _load(tmp_path)
    assert p.data.seed == "data/raw/seed.conll" and p.data.format == "auto" and p.data.labels is None
    assert p.select.alpha == 0.7 and p.select.strategy == "hybrid"
    assert p.final.ratios == [0.8, 0.1, 0.1]
    assert p.annotation.simulated is not None and p.annotation.simulated.state_dir == "annotation/simulated"
    assert p.annotation.doccano.url == "http://127.0.0.1:8000"


def test_project_params_yaml_is_valid() -> None:
    p = load_params(PARAMS)
    assert p.data.labels == ["Chemical", "Disease"]
    assert abs(sum(p.final.ratios) - 1) < 1e-9


def test_values_are_read(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["select"] = {"alpha": 0.25, "token_budget": 500}
        d["final"] = {"ratios": [0.7, 0.2, 0.1]}
        d["data"]["labels"] = ["PER", "LOC"]

    p = _load(tmp_path, mutate)
    assert p.select.alpha == 0.25 and p.select.token_budget == 500 and p.select.batch_size == 100
    assert p.final.ratios == [0.7, 0.2, 0.1]
    assert p.data.labels == ["PER", "LOC"]


@pytest.mark.parametrize(
    ("mutate", "key", "fragment"),
    [
        (lambda d: d["data"].update(labelz=["X"]), "data.labelz", "unknown key"),
        (lambda d: d.update(train={"learnig_rate": 0.1}), "train.learnig_rate", "unknown key"),
        (lambda d: d["annotation"]["simulated"].update(answrs="x"), "annotation.simulated.answrs", "unknown key"),
        (lambda d: d.update(extra_section={}), "extra_section", "unknown key"),
        (lambda d: d.update(select={"alpha": 1.5}), "select.alpha", "less than or equal to 1"),
        (lambda d: d.update(select={"alpha": -0.1}), "select.alpha", "greater than or equal to 0"),
        (lambda d: d.update(select={"batch_size": 0}), "select.batch_size", "greater than or equal to 1"),
        (lambda d: d.update(train={"learning_rate": 0}), "train.learning_rate", "greater than 0"),
        (lambda d: d.update(train={"epochs": 101}), "train.epochs", "less than or equal to 100"),
        (lambda d: d.update(train={"class_weighting": "sqrt"}), "train.class_weighting", "permitted"),
        (lambda d: d["data"].update(scheme="bioes"), "data.scheme", "permitted"),
        (lambda d: d["data"].update(tokenizer="spacy"), "data.tokenizer", "'default', 'social', 'biomedical'"),
        (lambda d: d["annotation"].update(max_held_back_share=1.5), "annotation.max_held_back_share", "less than"),
        (lambda d: d.update(model={"max_length": 4}), "model.max_length", "greater than or equal to 8"),
        (lambda d: d.update(final={"ratios": [0.5, 0.2, 0.2]}), "final.ratios", "summing to 1"),
        (lambda d: d.update(final={"ratios": [0.5, 0.5]}), "final.ratios", "three numbers"),
        (lambda d: d.update(final={"ratios": [1.2, -0.1, -0.1]}), "final.ratios.0", "less than 1"),
        (lambda d: d.update(final={"type_majority": 0.5}), "final.type_majority", "greater than 0.5"),
        (lambda d: d["data"].pop("gold"), "data.gold", "field required"),
        (lambda d: d["annotation"].update(simulated=None), "annotation.simulated", "needs an annotation.simulated"),
        (lambda d: d["annotation"]["simulated"].pop("answers"), "annotation.simulated.answers", "field required"),
        (lambda d: d["annotation"].update(backend="labelstudio"), "annotation.backend", "permitted"),
        (lambda d: d["annotation"].update(doccano={"qc_share": 2}), "annotation.doccano.qc_share", "less than"),
        # strict types: nothing is coerced silently (epochs 2.5 used to train 2 while dvc.lock said 2.5)
        (lambda d: d.update(train={"epochs": 2.5}), "train.epochs", "must be a whole number, got 2.5"),
        (lambda d: d.update(train={"epochs": True}), "train.epochs", "must be a number, got the boolean True"),
        (lambda d: d.update(train={"epochs": "3"}), "train.epochs", "must be a whole number, got '3'"),
        (lambda d: d.update(select={"alpha": True}), "select.alpha", "got the boolean True"),
        (lambda d: d.update(select={"alpha": "0.5"}), "select.alpha", "must be a number, got '0.5'"),
        (lambda d: d.update(select={"token_budget": 99.5}), "select.token_budget", "whole number"),
        (lambda d: d.update(final={"include_gold": 1}), "final.include_gold", "must be true or false, got 1"),
        (lambda d: d.update(final={"ratios": [0.8, True, 0.1]}), "final.ratios", "got the boolean True"),
        (lambda d: d.update(score={"engine": "spark"}), "score.engine", "permitted"),
        (lambda d: d.update(score={"ray_actors": 1.5}), "score.ray_actors", "whole number"),
        (lambda d: d.update(score={"ray_cpus_per_actor": 0}), "score.ray_cpus_per_actor", "greater than or equal"),
        (lambda d: d.update(select={"measure": "vote_entropy"}), "select",
         "measure 'vote_entropy' needs score.mc_dropout_passes > 0"),
        (lambda d: d.update(select={"balance_types": "yes"}), "select.balance_types", "must be true or false"),
        (lambda d: d.update(train={"entity_swap": -0.1}), "train.entity_swap", "greater than or equal to 0"),
        (lambda d: d.update(train={"entity_swap": 1.5}), "train.entity_swap", "less than or equal to 1"),
    ],
)
def test_bad_values_name_their_key(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], key: str, fragment: str
) -> None:
    err = _error(tmp_path, mutate)
    assert err.key == key
    assert f"params.yaml: {key}: " in str(err)
    assert fragment in str(err)


def test_doccano_backend_needs_no_simulated_section(tmp_path: Path) -> None:
    p = _load(tmp_path, lambda d: d.update(annotation={"backend": "doccano"}))
    assert p.annotation.backend == "doccano" and p.annotation.simulated is None


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError) as info:
        load_params(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value) and "not found" in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n", encoding="utf-8")
    with pytest.raises(ParamsError) as info:
        load_params(bad)
    assert "bad.yaml" in str(info.value) and "not valid YAML" in str(info.value)


def test_empty_or_non_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert info.value.key in ("data", "annotation") and "field required" in str(info.value)
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert info.value.key == "(top level)"


def test_whole_numbers_are_fine_where_a_float_is_needed(tmp_path: Path) -> None:
    p = _load(tmp_path, lambda d: d.update(select={"alpha": 1, "rare_bonus": 2}))
    assert p.select.alpha == 1 and p.select.rare_bonus == 2


def test_dvc_set_param_changes_only_that_line(tmp_path: Path) -> None:
    """`dvc exp run -S select.alpha=0.5` rewrites params.yaml through DVC's YAML round trip: the
    template is written in that round trip's own style, so only the value changes (comments kept)."""
    from dvc.utils.serialize import modify_yaml

    copy = tmp_path / "params.yaml"
    copy.write_text(PARAMS.read_text(encoding="utf-8"), encoding="utf-8")
    with modify_yaml(copy) as d:
        d["select"]["alpha"] = 0.5
    before = PARAMS.read_text(encoding="utf-8").splitlines()
    after = copy.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("  alpha: 0.5 ") and "# hybrid" in changed[0][1]


def test_select_batch_size_takes_a_schedule_per_cycle(tmp_path: Path) -> None:
    p = _load(tmp_path, lambda d: d.update(select={"batch_size": [50, 100, 200]}))
    assert [p.select.batch_size_for(c) for c in (1, 2, 3, 4, 9)] == [50, 100, 200, 200, 200]
    assert _load(tmp_path, lambda d: d.update(select={"batch_size": 30})).select.batch_size_for(5) == 30
    for bad, message in (([], "empty schedule"), ([50, 0], "greater than or equal to 1"), ([50, 2.5], "whole number"),
                         ("100", "whole number")):
        with pytest.raises(ParamsError, match=message) as err:
            _load(tmp_path, lambda d, bad=bad: d.update(select={"batch_size": bad}))
        assert "select.batch_size" in str(err.value)


def test_options_added_later_stay_out_of_dict_while_off(tmp_path: Path) -> None:
    """A benchmark's config (and the card's select table) is made from dict(): an option added later must not
    change it for a project that leaves the option off, or earlier runs would no longer be resumed."""
    off = _load(tmp_path)
    assert "entity_swap" not in off.train.dict() and "balance_types" not in off.dict()["select"]
    assert off.train.entity_swap == 0.0 and off.select.balance_types is False
    on = _load(tmp_path, lambda d: d.update(train={"entity_swap": 0.5}, select={"balance_types": True}))
    assert on.train.dict()["entity_swap"] == 0.5 and on.dict()["select"]["balance_types"] is True
