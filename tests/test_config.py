from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest

from ppl_vae.core.options import check_value
from ppl_vae.runs import recipe as config
from ppl_vae.runs.recipe import RecipeError

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_recipe_loads(path):
    r = config.load(path)
    assert r.name == path.stem
    assert r.model.z_dim >= 1


def test_overrides_are_typed():
    r = config.load(
        MODELS / "mnist_bernoulli_mlp.toml",
        ["train.epochs=3", "guide.name=iaf", "model.decoder.hidden=[10, 20]", "train.lr=0.5"],
    )
    assert r.train.epochs == 3 and r.guide.name == "iaf"
    assert r.model.decoder.hidden == [10, 20] and r.train.lr == 0.5


def test_int_promotes_to_float():
    assert config.from_dict({"train": {"lr": 1}}).train.lr == 1.0


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text("[train]\nepoch = 3\n")
    with pytest.raises(RecipeError, match=r"r\.toml: unknown key 'train\.epoch'.*'train\.epochs'"):
        config.load(p)


def test_wrong_type_names_key_and_file(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('[train]\nepochs = "ten"\n')
    with pytest.raises(RecipeError, match=r"r\.toml: key 'train\.epochs' must be of type int"):
        config.load(p)


def test_bool_is_not_an_int():
    with pytest.raises(RecipeError, match="train.epochs"):
        config.from_dict({"train": {"epochs": True}})


def test_round_trip(tmp_path):
    r = config.load(MODELS / "linear_gaussian.toml", ["train.seed=7"])
    config.save(r, tmp_path / "r.toml")
    assert config.load(tmp_path / "r.toml") == r


def test_bad_override_syntax():
    with pytest.raises(RecipeError, match="key=value"):
        config.from_dict({}, ["train.epochs"])


def test_the_one_checker_reads_types_as_toml_writes_them():
    assert check_value(1, float, "k") == 1.0 and isinstance(check_value(1, float, "k"), float)
    assert check_value((3, 4), Sequence[int] | None, "k") == [3, 4]
    assert check_value(None, Sequence[int] | None, "k") is None
    assert check_value("a", Literal["a", "b"], "k") == "a"
    with pytest.raises(ValueError, match=r"key 'k\[1\]' must be of type int, got 'x'"):
        check_value([1, "x"], list[int], "k")
    with pytest.raises(RecipeError, match=r"r\.toml: key 'k' must be of type float \| None"):
        check_value("big", float | None, "k", "r.toml")
    with pytest.raises(ValueError, match=r"key 'k' must be of type int, got True"):
        check_value(True, int, "k")


def test_every_recipe_is_in_the_docs_table():
    """docs/recipes.md's table names each recipe (the per-guide ones by their pattern)."""
    table = (MODELS.parent / "docs" / "recipes.md").read_text()
    missing = [
        p.name
        for p in sorted(MODELS.glob("*.toml"))
        if f"`{p.name}`" not in table and not p.stem.startswith("mnist_guide_")
    ]
    assert not missing, f"recipes missing from docs/recipes.md: {missing}"
