"""The run directory's record schemas: the cost fields are one definition."""

from helpers import run_config

from nac.cli.summary import summarise
from nac.run import rundir, schema
from nac.spec import cost as cost_lib


def test_the_cost_fields_are_the_ones_every_record_writes():
    network = run_config(run_dir="x", dataset="synthetic", envelope="8/2-1/6").initial_network()
    fields = schema.cost_fields(cost_lib.analyse(network, 16))
    assert list(fields) == [
        "trainable_params",
        "flops_per_image",
        "flops_per_batch_50",
        "flops_forward_per_image",
        "flops_training_per_image",
    ]
    assert fields["trainable_params"] == cost_lib.count_params(network) > 0
    assert {k: summarise(network, 16, None)[k] for k in fields} == fields  # nac.summary's record
    assert set(fields) <= set(schema.SUMMARY_STEP_FIELDS)  # summary.json lists them per step
    assert rundir.SUMMARY_STEP_FIELDS is schema.SUMMARY_STEP_FIELDS
