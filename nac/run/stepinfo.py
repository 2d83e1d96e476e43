"""What a run says about its steps: the whole run's ETA inputs, TensorBoard's hyperparameters
and architecture text (pure Python). `plan` is the run's `nac.run.plan.PlanStep`s in order."""

from __future__ import annotations

from nac.spec import layertable


def later_steps(plan: list, step) -> int:
    """Training steps planned after `step` (for the whole run's ETA)."""
    return sum(later.budget for later in plan[plan.index(step) + 1 :])


def later_fixed_s(plan: list, step, overheads: list[float]) -> float:
    """The later trainings' expected time outside training steps (set-up, evaluation, export):
    the mean of `overheads` (of the trainings this process finished) times the trainings to come."""
    if not overheads:
        return 0.0
    return sum(overheads) / len(overheads) * (len(plan) - plan.index(step) - 1)


def hparams(config, step, network) -> dict:
    """The step's hyperparameters for TensorBoard's HParams dashboard."""
    training = config.training
    return {
        "notation": network.notation(len(config.envelope_cell())),
        "step": step.name,
        "role": "construction" if step.is_iteration else config.role(),
        "dataset": config.data.dataset,
        "learning_rate": float(training.learning_rate),
        "lr_schedule": training.lr_schedule,
        "statistic": config.statistic.statistic,
        "steps": int(step.budget),
        "batch_size": int(training.batch_size),
        "seed": int(step.seed),
    }


def architecture_text(network, cell_size: int, params: int) -> str:
    """The network as Markdown for TensorBoard: its notation, parameters and layer table."""
    table = layertable.format_layers(layertable.layer_rows(network))
    body = "\n".join("    " + line for line in table.splitlines())  # a Markdown code block
    return f"**{network.notation(cell_size)}**, {params:,} trainable parameters\n\n{body}"
