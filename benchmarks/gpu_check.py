"""The Python half of `benchmarks/gpu_check.sh`: device facts, training throughput, report.

    python benchmarks/gpu_check.py facts OUT_DIR              # devices, versions -> facts.json
    python benchmarks/gpu_check.py throughput OUT_DIR [--dry_run]   # -> throughput.json
    python benchmarks/gpu_check.py report OUT_DIR             # every part -> results.json, results.md

Throughput: Envelope A (128/10-1-1-1/6) at 28x28 on synthetic 28x28x3 images (nac's synthetic
set is generated at the input size; CIFAR-10's 28x28 training crops of 32x32 images give the network
the same shape), batch 50, trained by nac's loop (`nac.training.train.Trainer`, per-cell default, taps
collecting) in float32, with mixed precision (`mixed_float16`) and with XLA (`jit_compile`);
images/s excludes the first (tracing) call and evaluation; each at one step per device call and at the automatic setting with a GPU (20
steps per call). `--dry_run`: 8/1-1/6 at 8x8, 4 steps, on the CPU.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = {"float32": [], "mixed_float16": ["--mixed_precision"], "xla": ["--jit_compile"]}


def _write(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def facts(out):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(g) for g in gpus]
    _write(
        os.path.join(out, "facts.json"),
        {
            "tensorflow": tf.__version__,
            "python": sys.version.split()[0],
            "gpus": [{"name": g.name, **{k: str(v) for k, v in d.items()}} for g, d in zip(gpus, details)],
            "cuda_build": tf.test.is_built_with_cuda(),
            "cores": os.cpu_count(),
        },
    )


def one_variant(variant, dry_run, steps_per_loop=1):
    """Trains one variant (the trainer sets and restores the mixed precision policy)."""
    import keras

    from nac.data import pipelines as data
    from nac.net.stats import FeaturemapStatistics
    from nac.spec import arch
    from nac.training.train import TrainConfig, Trainer

    notation, size, steps = ("8/1-1/6", 8, 4) if dry_run else ("128/10-1-1-1/6", 28, 100)
    flags = VARIANTS[variant]
    config = TrainConfig(
        steps=steps,
        batch_size=50,
        bn_eval="moving",
        log_every=steps,
        mixed_precision="--mixed_precision" in flags,
        jit_compile="--jit_compile" in flags,
        steps_per_loop=steps_per_loop,
        record_every=10,
    )
    loaded = data.load(
        data.DataConfig(
            "synthetic",
            image_size=size,
            seed=0,
            synthetic_train_examples=1000,
            synthetic_test_examples=50,
        )
    )
    keras.utils.set_random_seed(0)
    trainer = Trainer(arch.network_from_notation(notation), size, config)
    stats = FeaturemapStatistics(trainer.model, 50)
    start = time.perf_counter()
    result = trainer.train(loaded, callbacks=[stats])
    keras.backend.clear_session()
    return {
        "variant": variant,
        "network": notation,
        "image_size": size,
        "steps": steps,
        "steps_per_loop": steps_per_loop,
        "images_per_sec": result.images_per_sec,
        "wall_time_s": time.perf_counter() - start,
        "final_loss": result.loss_curve[-1][1],
    }


def throughput(out, dry_run):
    rows = []
    from nac.run.runconfig import AUTO_STEPS_PER_LOOP_GPU

    for variant in VARIANTS:
        # One step per call and the automatic setting with a GPU (the dry run: float32 only).
        for per_loop in (1, AUTO_STEPS_PER_LOOP_GPU) if variant == "float32" or not dry_run else (1,):
            try:
                rows.append(one_variant(variant, dry_run, per_loop))
            except Exception as e:  # noqa: BLE001  (a failing variant is a result to report)
                rows.append(
                    {"variant": variant, "steps_per_loop": per_loop, "error": [f"{type(e).__name__}: {e}"]}
                )
    _write(os.path.join(out, "throughput.json"), {"dry_run": dry_run, "rows": rows})


def _read(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f) if name.endswith(".json") else f.read()


def report(out):
    results = {
        "facts": _read(out, "facts.json"),
        "tests": _read(out, "tests.json"),
        "throughput": _read(out, "throughput.json"),
        "construction": _read(out, "construction.json"),
    }
    construction_dir = os.path.join(out, "construction")
    summary_path = os.path.join(construction_dir, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        results["construction_summary"] = {
            "complete": summary.get("complete"),
            "final": summary.get("final", {}).get("notation"),
            "test_accuracy": summary.get("final", {}).get("test_accuracy"),
            "images_per_sec": [s.get("images_per_sec") for s in summary.get("steps", [])],
            "wall_time_s": summary.get("wall_time_s"),
        }
    _write(os.path.join(out, "results.json"), results)
    lines = ["# nac GPU check", ""]
    f = results["facts"] or {}
    lines += [
        f"TensorFlow {f.get('tensorflow')}, GPUs: {[g.get('name') for g in f.get('gpus', [])] or 'none'}",
        "",
    ]
    t = results["tests"] or {}
    lines += [f"Device tests: `{t.get('command')}` -> exit {t.get('exit_code')} ({t.get('summary')})", ""]
    tp = results["throughput"] or {"rows": []}
    lines += ["| variant | network | steps/loop | images/s |", "|---|---|---|---|"]
    for row in tp["rows"]:
        ips = row.get("images_per_sec")
        lines.append(
            f"| {row['variant']} | {row.get('network', '-')} | {row.get('steps_per_loop', '-')} | "
            f"{f'{ips:.1f}' if ips is not None else 'error: ' + ' '.join(row.get('error', []))} |"
        )
    c = results.get("construction_summary") or {}
    lines += [
        "",
        f"Construction: exit {(results['construction'] or {}).get('exit_code')}, final {c.get('final')}, "
        f"test accuracy {c.get('test_accuracy')}, images/s per step {c.get('images_per_sec')}",
    ]
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["facts", "throughput", "report"])
    parser.add_argument("arg")
    parser.add_argument("--dry_run", action="store_true")
    args = parser.parse_args()
    if args.part == "facts":
        facts(args.arg)
    elif args.part == "throughput":
        throughput(args.arg, args.dry_run)
    else:
        report(args.arg)


if __name__ == "__main__":
    main()
