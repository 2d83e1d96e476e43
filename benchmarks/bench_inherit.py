"""How much of a trained iteration survives weight inheritance, before any training.

For each construction iteration i of a run made with `--inherit_weights` (its
`iter_<i>/weights.npz`), builds the restructured network i+1 and measures its test accuracy
in inference mode right after inheriting, for every initialisation choice of `nac.search.inherit`:

  appended  identity (default) | fresh     the cell appended at each stage's tail
  new_inputs zero (default)    | fresh     rows of inherited kernels that read new channels

next to the trained network i itself and a from-scratch network i+1. Nothing is trained: this
measures function preservation (what pruning alone costs), not what training makes of it.

  python benchmarks/bench_inherit.py RUN [--examples 10000]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--examples", type=int, default=10000)
    args = p.parse_args(argv)

    import json

    import keras
    import numpy as np

    from nac.data import pipelines as data_lib
    from nac.net import weights as net_weights
    from nac.net.model import BuildOptions, build_model
    from nac.run.runconfig import RunConfig
    from nac.search import inherit, statsio
    from nac.search import restructure as restructure_lib
    from nac.spec import arch as arch_lib
    from nac.spec.config import OriginalConfig

    run = args.run
    with open(os.path.join(run, "run_config.json")) as f:
        config = RunConfig.from_flat(json.load(f))
    with open(os.path.join(run, "config.json")) as f:
        policy = restructure_lib.Policy.from_config(OriginalConfig.from_original(json.load(f)))
    data = data_lib.load(
        data_lib.DataConfig(
            dataset=config.data.dataset,
            data_dir=config.data.data_dir,
            image_size=config.resolved_image_size,
            seed=0,
        )
    )
    test = data.evaluation("test", 500).take(max(1, args.examples // 500))
    base = config.initial_network()
    options = BuildOptions(branch_order=config.statistic.branch_order)

    def accuracy(model):
        correct = total = 0
        for images, labels in test:
            logits = model(images, training=False)
            correct += int(np.sum(np.argmax(logits, -1) == labels.numpy()))
            total += int(labels.shape[0])
        return correct / total

    print(
        "| iteration | trained i | i+1 fresh | identity + zero rows | identity + fresh rows | fresh cell + zero rows | fresh cell + fresh rows |"
    )
    print("|---|---|---|---|---|---|---|")
    i = 0
    while os.path.exists(os.path.join(run, f"iter_{i}", inherit.WEIGHTS_FILE)):
        step = os.path.join(run, f"iter_{i}")
        with open(os.path.join(step, "network.json")) as f:
            body = arch_lib.body_from_original(json.load(f))
        old_net = arch_lib.Network(body, base.stem, base.head, base.input_channels)
        stats = statsio.read_stats(os.path.join(step, "stats.json"))
        new_net, report = restructure_lib.restructure_with_report(old_net, stats, policy)
        with np.load(os.path.join(step, inherit.WEIGHTS_FILE)) as saved:
            old = {k: saved[k] for k in saved.files}
        keras.utils.set_random_seed(i)
        old_model = build_model(old_net, config.resolved_image_size, options)
        net_weights.assign(old_model, old)
        row = [accuracy(old_model)]
        new_model = build_model(new_net, config.resolved_image_size, options)
        fresh = net_weights.model_weights(new_model)
        row.append(accuracy(new_model))
        for appended in ("identity", "fresh"):
            for new_inputs in ("zero", "fresh"):
                weights, _ = inherit.inherit(
                    old_net,
                    old,
                    new_net,
                    fresh,
                    report.cell_map,
                    appended=appended,
                    new_inputs=new_inputs,
                    branch_order=config.statistic.branch_order,
                )
                net_weights.assign(new_model, weights)
                row.append(accuracy(new_model))
        print(f"| {i} -> {i + 1} | " + " | ".join(f"{a:.4f}" for a in row) + " |", flush=True)
        keras.backend.clear_session()
        i += 1


if __name__ == "__main__":
    main()
