"""Table 1 shows top-5 error where a run recorded it (the paper's ImageNet figure)."""

import csv
import io

from nac.reporting import table1


def _net(role, dataset, error, top5_error=None, run="r"):
    return table1.NetResult(
        run=run,
        run_dir=f"runs/{run}",
        step="final",
        role=role,
        dataset=dataset,
        notation="96/2-1/6",
        trainable_params=1000,
        flops_per_batch_50=1e9,
        flops_per_image=2e7,
        test_error=error,
        seed=1,
        test_top5_error=top5_error,
    )


def test_top5_error_follows_the_top1_error_where_recorded():
    assert table1._top5_error({"final": {"test_accuracy": 0.7, "test_top5": 0.9}}) == 1.0 - 0.9
    assert table1._top5_error({"final": {"test_accuracy": 0.7}}) is None
    nets = [_net("oneshot", "imagenet2012", 0.3, 0.1, "i"), _net("oneshot", "cifar10", 0.2, None, "c")]
    rows = table1.table_rows(nets)
    text = table1.table_markdown(rows, {})
    imagenet = next(line for line in text.splitlines() if "imagenet2012" in line)
    cifar = next(line for line in text.splitlines() if "| cifar10 |" in line)
    assert "30.00 (top-5 10.00)" in imagenet and "top-5" not in cifar
    table = list(csv.DictReader(io.StringIO(table1.table_csv(rows, nets))))
    by_dataset = {r["dataset"]: r for r in table if r["row_type"] == "group"}
    assert float(by_dataset["imagenet2012"]["test_top5_error_pct_mean"]) == 10.0
    assert by_dataset["cifar10"]["test_top5_error_pct_mean"] == ""
