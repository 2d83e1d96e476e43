"""The run configuration's sections, their checks and the flat form of run_config.json."""

import dataclasses
import json
import pathlib

import pytest

from nac.run import sections
from nac.run.runconfig import SECTION_OF, SECTIONS, RunConfig, flat_defaults
from nac.spec.errors import ConfigError

RUN_CONFIGS = pathlib.Path(__file__).parents[1] / "fixtures" / "run_configs"


@pytest.mark.parametrize(
    "section, field, value, message",
    [
        (sections.DataSection, "dataset", "cifar11", "--dataset: got 'cifar11'; expected one of"),
        (sections.DataSection, "downsample", 0, "--downsample: got 0; expected an integer >= 1"),
        (sections.DataSection, "validation_examples", 50_000, "--validation_examples: got 50000; must be"),
        (sections.SearchSection, "stem", "conv5x5", "--stem: got 'conv5x5'; expected one of"),
        (sections.SearchSection, "maxfilterprune", 0, "--maxfilterprune: got 0; expected an integer >= 1"),
        (sections.SearchSection, "random_pool", ("2x2",), "--random_pool"),
        (sections.SearchSection, "stats_stop_tau", 1.5, "--stats_stop_tau: got 1.5; expected a Kendall tau"),
        (sections.SearchSection, "inherit_final", True, "--inherit_final: got True; needs --inherit_weights"),
        (sections.StatisticSection, "statistic", "l3", "--statistic: got 'l3'; expected one of"),
        (sections.StatisticSection, "stats_every", -1, "--stats_every: got -1; expected an integer >= 0"),
        (sections.TrainingSection, "batch_size", 0, "--batch_size: got 0; expected an integer >= 1"),
        (sections.TrainingSection, "learning_rate", 0.0, "--learning_rate: got 0.0; expected a number > 0"),
        (
            sections.TrainingSection,
            "final_epochs",
            -1.0,
            "--final_epochs: got -1.0; expected a positive number",
        ),
        (sections.TrainingSection, "steps_per_loop", 0, "--steps_per_loop: got 0; expected an integer >= 1"),
        (sections.RuntimeSection, "strategy", "tpu", "--strategy: got 'tpu'; expected one of"),
        (sections.RuntimeSection, "intra_op_threads", -1, "--intra_op_threads: got -1; expected an integer"),
        (sections.RuntimeSection, "seed", -2, "--seed: got -2; expected an integer >= 0"),
    ],
)
def test_each_section_checks_its_fields_with_one_line_naming_the_flag(section, field, value, message):
    with pytest.raises(ConfigError) as e:
        section(**{field: value})
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    # The same message through the whole configuration (the flat form the CLI gives).
    with pytest.raises(ConfigError) as whole:
        RunConfig.from_flat({"run_dir": "x", field: value})
    assert str(whole.value) == str(e.value)


def test_sections_check_pairs_within_them():
    with pytest.raises(ConfigError, match="--final_steps and --final_epochs both given"):
        sections.TrainingSection(final_steps=10, final_epochs=1.0)
    with pytest.raises(ConfigError, match="--augment: got 'crop_flip'; crop_flip is for imagenet2012"):
        sections.DataSection(augment="crop_flip")
    assert sections.DataSection(dataset="imagenet").dataset == "imagenet2012"  # an alias


def test_checks_across_sections_stay_with_the_run_config():
    with pytest.raises(ConfigError, match="--mode=random needs --arch"):
        RunConfig.from_flat({"run_dir": "x", "mode": "random"})
    with pytest.raises(ConfigError, match="--stats_stop_patience: got 3; the stop needs 4 records"):
        RunConfig.from_flat(
            {"run_dir": "x", "dataset": "synthetic", "envelope": "8/2-1/6", "stats_stop_tau": 0.9,
             "stats_every": 10, "construction_steps": 30}
        )  # fmt: skip
    with pytest.raises(ConfigError, match="--run_dir: got ''"):
        RunConfig.from_flat({"run_dir": ""})


def test_every_flat_field_has_one_section_and_the_defaults_match():
    names = [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names)) == len(SECTION_OF)
    config = RunConfig(run_dir="x")
    flat = config.to_flat()
    assert set(flat) == {"run_dir", "mode", *SECTION_OF}
    assert {k: v for k, v in flat.items() if k != "run_dir"} == flat_defaults()
    assert config.training.learning_rate == flat["learning_rate"] == config.value("learning_rate")


@pytest.mark.parametrize("name", ["construct.json", "original_config.json"])
def test_an_older_run_config_json_reads_back_and_writes_the_same_object(name):
    old = json.loads((RUN_CONFIGS / name).read_text())
    config = RunConfig.from_flat(old)
    again = json.loads(json.dumps(config.to_flat()))
    assert again == old and list(again) == list(old)  # the same keys, in the same order
    assert RunConfig.from_flat(again) == config and config.differences(RunConfig.from_flat(again)) == []


def test_the_older_run_config_json_resolves_to_its_settings():
    config = RunConfig.from_flat(json.loads((RUN_CONFIGS / "original_config.json").read_text()))
    assert (config.mode, config.training.batch_size, config.training.original_gpus) == ("construct", 100, 2)
    assert config.search.inherit_weights and config.search.stats_stop_tau == 0.9
    assert config.initial_network().notation() == "128/10-1-1-1/6"
    assert config.replace(seed=5).runtime.seed == 5 and config.runtime.seed is None


def test_a_flat_object_without_run_dir_is_refused_before_its_sections_are_read():
    # A run_config.json that nac did not write: the resume refusal names what is missing.
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'run_dir'"):
        RunConfig.from_flat({"iterations": "x", "mode": 3})


def test_a_field_newer_than_a_saved_object_takes_its_default_and_changes_nothing():
    old = json.loads((RUN_CONFIGS / "construct.json").read_text())
    saved = RunConfig.from_flat(old)
    assert "match_params" not in old and saved.search.match_params == 0.0
    current = RunConfig.from_flat({**saved.to_flat(), "match_params": 0.0})
    assert "match_params" in current.to_flat() and "match_params" not in saved.to_flat()
    assert current.differences(saved) == [] == saved.differences(current)
