"""The report's ablation section (`nac.reporting.ablation`) on a hand-written ablation.json."""

import json
import types

from nac.reporting import ablation

DOC = {
    "format": "nac-ablation/1",
    "examples": 10,
    "split": "test",
    "base": {"loss": 1.0, "accuracy": 0.5},
    "branches": {
        "Cell1/Branch1": {
            "loss": 1.2,
            "accuracy": 0.4,
            "delta_loss": 0.2,
            "delta_accuracy": -0.1,
            "criteria": {"l2": 2.0, "random": 0.3},
        },
        "Cell1/Branch2": {
            "loss": 1.1,
            "accuracy": 0.5,
            "delta_loss": 0.1,
            "delta_accuracy": 0.0,
            "criteria": {"l2": 1.0, "random": 0.9},
        },
    },
    "stages": [
        {
            "stage": 0,
            "branches": ["Cell1/Branch1", "Cell1/Branch2"],
            "tau": {"l2": {"value": 1.0, "ci": [1.0, 1.0]}, "random": {"value": -1.0, "ci": [-1.0, 1.0]}},
            "prune_agreement": {"l2": 1.0, "random": None},
        },
    ],
    "notes": ["taylor: not recorded"],
}


def fake_run(tmp_path, doc):
    step = tmp_path / "iter_0"
    step.mkdir()
    (step / "ablation.json").write_text(json.dumps(doc))
    (tmp_path / "final").mkdir()
    steps = {
        "iter_0": types.SimpleNamespace(path=str(step)),
        "final": types.SimpleNamespace(path=str(tmp_path / "final")),
    }
    return types.SimpleNamespace(label="run", steps=steps)


def test_table_holds_tau_intervals_and_agreement(tmp_path):
    notes = []
    entries = ablation.read_ablations([fake_run(tmp_path, DOC)], notes)
    assert [e["step"] for e in entries] == ["iter_0"] and notes == []
    md = ablation.ablation_markdown(entries)
    assert "| stage | tau l2 | tau random | prune agreement |" in md
    assert "| 0 | +1.00 [+1.00, +1.00] | -1.00 [-1.00, +1.00] | l2 1.00, random - |" in md
    assert "- taylor: not recorded" in md
    fig = ablation.scatter_figure(entries[0])
    assert [ax.get_xlabel() for ax in fig.axes] == ["l2", "random"]
    assert len(fig.axes[0].collections) == 1  # one stage, two points
    assert fig.axes[0].collections[0].get_offsets().shape == (2, 2)


def test_foreign_files_are_noted_and_skipped(tmp_path):
    notes = []
    assert ablation.read_ablations([fake_run(tmp_path, {"format": "other"})], notes) == []
    assert "is not nac-ablation/1" in notes[0]
