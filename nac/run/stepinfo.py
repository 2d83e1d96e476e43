"""What a run says about its steps: the whole run's ETA inputs, TensorBoard's hyperparameters
and architecture text (pure Python). `plan` is the run's step names in order."""

from __future__ import annotations

from nac.spec import layertable


def later_steps(config, plan: list[str], name: str) -> int:
    """Training steps planned after step `name` (for the whole run's ETA)."""
    later = plan[plan.index(name) + 1 :]
    return sum(
        config.construction_budget() if n.startswith("iter_") else config.final_budget() for n in later
    )


def later_fixed_s(plan: list[str], name: str, overheads: list[float]) -> float:
    """The later trainings' expected time outside training steps (set-up, evaluation, export):
    the mean of `overheads` (of the trainings this process finished) times the trainings to come."""
    if not overheads:
        return 0.0
    return sum(overheads) / len(overheads) * (len(plan) - plan.index(name) - 1)


def hparams(config, name: str, network, steps: int, seed: int) -> dict:
    """The step's hyperparameters for TensorBoard's HParams dashboard."""
    return {
        "notation": network.notation(len(config.envelope_cell())),
        "step": name,
        "role": config.role() if not name.startswith("iter_") else "construction",
        "dataset": config.dataset,
        "learning_rate": float(config.learning_rate),
        "lr_schedule": config.lr_schedule,
        "statistic": config.statistic,
        "steps": int(steps),
        "batch_size": int(config.batch_size),
        "seed": int(seed),
    }


def architecture_text(network, cell_size: int, params: int) -> str:
    """The network as Markdown for TensorBoard: its notation, parameters and layer table."""
    table = layertable.format_layers(layertable.layer_rows(network))
    body = "\n".join("    " + line for line in table.splitlines())  # a Markdown code block
    return f"**{network.notation(cell_size)}**, {params:,} trainable parameters\n\n{body}"
