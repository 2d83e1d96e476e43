"""SavedModel export time: Keras' ExportArchive (nac's export) against a plain tf.Module.

Both write the same `serving_default` signature (0-255 pixels -> logits) of the same model;
the module's object graph holds only the variables and the serving function, not the Keras
layer tree. The rounds interleave the two, alternating which goes first. Prints each time, the medians' ratio and a check that both
SavedModels compute the same logits.

  python benchmarks/bench_export.py [--network 16/1-4-4/6] [--image_size 28] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nac.training import runtime  # noqa: E402

runtime.quiet_tensorflow()
runtime.configure_threads()

import tensorflow as tf  # noqa: E402

from nac.net import export  # noqa: E402
from nac.net import model as model_lib  # noqa: E402
from nac.spec import arch  # noqa: E402


def plain_module(model, path, dataset, image_size, channels):
    module = tf.Module()
    module.model_variables = list(model.variables)
    module.serve = export.serving_function(model, dataset, image_size, channels)
    tf.saved_model.save(module, path, signatures={export.ENDPOINT: module.serve})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="16/1-4-4/6", help="the quickstart's final network")
    p.add_argument("--image_size", type=int, default=28)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    net = arch.network_from_notation(args.network, input_channels=1)
    model = model_lib.build_model(net, args.image_size)
    out = tempfile.mkdtemp(prefix="bench_export_")
    times = {"archive": [], "module": []}
    variants = [("archive", export.export_saved_model), ("module", plain_module)]
    try:
        for r in range(args.rounds):
            for name, fn in variants if r % 2 == 0 else variants[::-1]:
                path = os.path.join(out, f"{name}{r}")
                t0 = time.perf_counter()
                fn(model, path, "fashion_mnist", args.image_size, 1)
                times[name].append(time.perf_counter() - t0)
                print(f"round {r + 1}: {name} {times[name][-1]:.2f} s", flush=True)
        pixels = tf.random.uniform([4, args.image_size, args.image_size, 1], 0, 255, seed=0)
        logits = [
            tf.saved_model.load(os.path.join(out, f"{name}0")).signatures[export.ENDPOINT](pixels=pixels)[
                "logits"
            ]
            for name in times
        ]
        diff = float(tf.reduce_max(tf.abs(logits[0] - logits[1])))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    a, b = statistics.median(times["module"]), statistics.median(times["archive"])
    print(f"{args.network} at {args.image_size}x{args.image_size}, {args.rounds} rounds")
    print(
        f"export time archive / module = {b / a:.2f} (medians {b:.2f} s vs {a:.2f} s); max logit difference {diff:.2g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
