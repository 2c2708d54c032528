"""A setting declared once is complete: its flag, check and help, and under which values of another it is read at
all; the registry reads a model file once; a file's hash is of what it does, not of where its names come from."""
import textwrap
from dataclasses import asdict, dataclass, replace

import pytest

import models
from core.records import load_record
from core.settings import SGDRecipe, When, idle_settings, recipe_text, setting
from experiment.definition import experiment_of_record, recipe_values
from models import source
from models.kit import Recipe
from tests.conftest import ROOT, main_cli


@dataclass(frozen=True, kw_only=True)
class WarmRecipe(Recipe):
    """A user's recipe class: a field read only under some values of another, declared with the field."""
    optimizer: str = setting("sgd", help="which optimizer", choices=("sgd", "adam"))
    nesterov: bool = setting(False, help="SGD's Nesterov momentum", when=When("optimizer", "sgd"))
    betas: tuple[float, float] = setting((0.9, 0.999), help="Adam's betas", when=When("optimizer", "adam"))


def test_a_users_recipe_class_declares_its_idle_fields_with_the_fields():
    adam = WarmRecipe(epochs=1, batch_size=8, lr=0.1, augment=False, optimizer="adam")
    assert idle_settings(WarmRecipe, asdict(adam)) == {"nesterov", "temperature", "teacher_share"}
    # under adam, nesterov changes nothing a run does: one experiment; betas does
    assert recipe_values(WarmRecipe, asdict(adam)) == recipe_values(WarmRecipe, asdict(replace(adam, nesterov=True)))
    assert recipe_values(WarmRecipe, asdict(adam)) != recipe_values(WarmRecipe, asdict(replace(adam, betas=(0.8, 0.9))))
    sgd = replace(adam, optimizer="sgd")
    assert recipe_values(WarmRecipe, asdict(sgd)) != recipe_values(WarmRecipe, asdict(replace(sgd, nesterov=True)))


def test_the_default_recipes_idle_fields_follow_their_declarations():
    recipe = models.get_recipe("model3", "published")  # StepLR, no teacher
    assert idle_settings(SGDRecipe, asdict(recipe)) == {"warmup", "cycle_epochs", "floor", "temperature",
                                                        "teacher_share"}
    assert "temperature" not in recipe_text(recipe) and "teacher=" not in recipe_text(recipe)
    taught = replace(recipe, teacher="model4", schedule="one-cycle")
    assert idle_settings(SGDRecipe, asdict(taught)) == {"step_size", "gamma"}
    assert "temperature=4" in recipe_text(taught) and "teacher=model4" in recipe_text(taught)
    assert When("teacher").holds({}) and not When("teacher").holds({"teacher": ""})


def test_the_registry_reads_a_model_file_once_per_version(monkeypatch, tmp_path):
    calls = []
    hashed = source.source_hash
    monkeypatch.setattr(source, "source_hash", lambda path: calls.append(path) or hashed(path))
    models._read_entry.cache_clear()
    records = [load_record(path.parent) for path in sorted((ROOT / "results").glob("*/metrics.json"))
               if '"model": "model3"' in path.read_text()]
    assert len(records) > 20
    experiments = {experiment_of_record(record) for record in records}
    assert len(calls) == 1 and models.entry("model3") is models.entry("model3")
    assert len(experiments) > 1  # the records are of several experiments, and read one file


def test_a_files_hash_is_of_what_it_does_not_where_it_imports_from(user_models):
    kit = (ROOT / "models" / "model5.py").read_text()
    assert "from models.kit import" in kit
    before = models.source_hash("model5")
    old_paths = kit.replace("from models.kit import SGDRecipe, Target, conv_bn_relu, one_cycle_search_space, "
                            "separable_bn_relu",
                            "from models.blocks import conv_bn_relu, separable_bn_relu\n"
                            "from models.search_spaces import one_cycle_search_space\n"
                            "from core.records import Target\nfrom core.settings import SGDRecipe")
    assert old_paths != kit
    user_models("model5", old_paths)
    assert models.source_hash("model5") == before
    user_models("model5", old_paths.replace("width = 20", "width = 22"))
    assert models.source_hash("model5") != before


def test_a_model_file_written_against_old_paths_is_told_the_new_import(user_models, tmp_path):
    user_models("model7", textwrap.dedent("""
        '''Model7: written before the modules moved.'''
        from torch import nn

        from settings import SGDRecipe

        RECIPE = SGDRecipe(epochs=1, batch_size=8, lr=0.1, momentum=0.9, step_size=1, gamma=0.1, augment=False)
        """))
    done = main_cli("--models", "model7", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("main.py: error: model7: models/model7.py, line 5: no module 'settings': it moved to "
                                   "core.settings; a model file imports what it takes from the package from "
                                   "models.kit, e.g. `from models.kit import SGDRecipe, Target, setting` "
                                   "(--traceback shows Python's traceback)")


@pytest.mark.parametrize("name", ["model5", "model6"])
def test_committed_records_keep_their_hashes(name):
    """The modules moved into folders and the files import from models.kit: the hash of each published file is the
    one its committed records carry."""
    hashes = {load_record(path.parent).model_hash for path in (ROOT / "results").glob("*/metrics.json")
              if f'"model": "{name}"' in path.read_text()}
    assert models.source_hash(name) in hashes
