"""Lines for slow evaluations and exports, the whole run's ETA, and the short log format."""

import io
import logging
import time

from nac.run import logformat
from nac.training import monitor, notices


def test_slow_work_gets_a_line_when_it_starts_to_take_long_and_one_with_its_duration():
    lines = []
    with notices.SlowNotice("final: exporting the SavedModel", lines.append, after_s=0.05):
        time.sleep(0.3)
    assert lines[0] == "final: exporting the SavedModel..."
    assert lines[1].startswith("final: exporting the SavedModel: done in ") and lines[1].endswith(" s")
    assert len(lines) == 2


def test_quick_work_stays_silent_and_a_notice_can_be_reused():
    lines = []
    notice = notices.SlowNotice("iter_0: evaluating", lines.append, after_s=0.5)
    for _ in range(3):
        with notice:
            pass
    assert lines == []


def test_every_evaluation_of_a_training_gets_its_own_notice():
    lines = []
    callback = notices.EvaluationNotice("iter_1", lines.append, recalibrates=True, after_s=0.05)
    for _ in range(2):
        callback.on_test_begin()
        time.sleep(0.2)
        callback.on_test_end()
    assert lines[0] == "iter_1: evaluating (batch-norm re-estimation, test set)..."
    assert len(lines) == 4 and "done in" in lines[3]


def test_the_progress_line_adds_the_whole_runs_eta():
    lines = []
    line = monitor.ProgressLine(
        "[iter_0 1/3]",
        stream=io.StringIO(),
        log=lines.append,
        later_steps=1000,
        batch_size=50,
        later_fixed_s=30,
    )
    # 100 steps left at 500 img/s = 10 s; 1000 later steps x 50 / 500 = 100 s; + 30 s.
    line({"step": 900, "steps": 1000, "loss": 1.0, "accuracy": 0.5, "images_per_sec": 500.0, "eta_s": 10.0})
    assert lines[0].endswith("ETA 10s (run ETA 2m20s)")
    last = monitor.ProgressLine("[final 3/3]", stream=io.StringIO(), log=lines.append)
    last({"step": 10, "steps": 10, "loss": 1.0, "accuracy": 0.5, "images_per_sec": 500.0, "eta_s": 0.0})
    assert lines[1].endswith("ETA 0s")  # the last training: its ETA is the run's


def _record(level, message):
    return logging.LogRecord("nac", level, "runner.py", 73, message, None, None)


def test_the_short_format_has_the_time_and_the_message_only():
    formatter = logformat.ShortFormatter()
    info = formatter.format(_record(logging.INFO, "iter_0: training 8/2-1/6"))
    warning = formatter.format(_record(logging.WARNING, "stopping at the next step boundary"))
    clock = r"\d\d:\d\d:\d\d"
    import re

    assert re.fullmatch(clock + r" iter_0: training 8/2-1/6", info), info
    assert re.fullmatch(clock + r" warning: stopping at the next step boundary", warning), warning


def test_a_log_that_is_not_a_terminal_gets_short_lines_even_under_absl(monkeypatch):
    root = logging.getLogger()
    absl_like = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(root, "handlers", [absl_like])
    log = logging.getLogger("nac.test_short_format")
    monkeypatch.setattr(log, "handlers", [])
    stream = io.StringIO()
    logformat.configure(log, stream)
    logformat.configure(log, stream)  # once only
    log.info("done: 8/4-3/6")
    assert stream.getvalue().count("done: 8/4-3/6") == 1 and "runner.py" not in stream.getvalue()
    assert absl_like.stream.getvalue() == ""
