"""The progress line: one updating line on a terminal, plain lines (throttled) otherwise."""

import io

from nac.training import monitor


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _info(step, steps=100, eta=None):
    return {
        "step": step,
        "steps": steps,
        "loss": 1.23456,
        "accuracy": 0.5,
        "images_per_sec": 321.4,
        "eta_s": eta,
    }


def test_durations():
    assert [monitor.format_duration(s) for s in (None, float("inf"), 7.4, 75, 3 * 3600 + 125)] == [
        "?",
        "?",
        "7s",
        "1m15s",
        "3h02m",
    ]


def test_a_terminal_gets_one_line_rewritten_in_place_and_ended_at_the_last_step():
    stream = _Tty()
    line = monitor.ProgressLine("iter_0 1/3", stream=stream, min_interval_s=0.0)
    line(_info(10, eta=95))
    line(_info(100, eta=0))
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\r") == 2 and text.count("\n") == 1
    assert "iter_0 1/3 step 10/100 loss 1.2346 acc 0.500 321 img/s ETA 1m35s" in text
    assert "step 100/100" in text and "ETA 0s" in text


def test_a_log_gets_plain_lines_throttled_but_always_the_last_step():
    lines = []
    line = monitor.ProgressLine("final", stream=io.StringIO(), log=lines.append)
    assert line.min_interval_s == 10.0  # not a terminal: at most one line per 10 s
    for step in (10, 20, 30, 100):
        line(_info(step))
    assert [text.split(" loss")[0] for text in lines] == ["final step 10/100", "final step 100/100"]
    assert lines[0].endswith("ETA ?")
