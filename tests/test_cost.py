"""Long jobs say what they will cost (ppl_vae.core.heartbeat) and refuse what memory cannot hold
(ppl_vae.bounds.cost)."""

from __future__ import annotations

import io
import resource

import pytest
import torch

import ppl_vae as pv
from ppl_vae.bounds import cost
from ppl_vae.core.errors import InputError
from ppl_vae.core.heartbeat import Heartbeat, duration


def _parts(seed: int = 0):
    torch.manual_seed(seed)
    x = torch.bernoulli(torch.rand(20, 12))
    return pv.build_model(12, 3, hidden=[16]), pv.build_guide("diagonal", 12, 3, hidden=[16]), x


def test_evaluate_refuses_kept_log_weights_that_do_not_fit(monkeypatch):
    model, guide, x = _parts()
    monkeypatch.setattr(cost, "available_memory", lambda device: 10 * 2**20)  # 10 MiB
    with pytest.raises(InputError) as e:
        pv.evaluate(model, guide, x, [300_000], khat=True, batch_size=10)
    msg = str(e.value)
    need = cost.KEPT_BYTES * 300_000 * 10
    assert f"about {cost.gib(need)} for a batch of 10 points" in msg
    assert "--no-khat" in msg and "at most 1 (--batch-size)" in msg
    # without k-hat the memory is flat in K: the same K is not refused (and is not run here)
    cost.check_memory(300_000, 10, False, torch.device("cpu"))


def test_a_memory_check_passes_what_fits():
    model, guide, x = _parts()
    cost.check_memory(10**9, 100, False, torch.device("cpu"))  # nothing kept
    b = pv.evaluate(model, guide, x, [1, 30], khat=True)
    assert b.n == 20


def test_the_estimate_is_said_with_a_bar_and_for_long_jobs_without_one():
    out = io.StringIO()
    beat = Heartbeat("evaluate", progress=False, every=60, out=out)
    beat.estimate(30.0, "short")  # shorter than a beat and no bar: said by nothing
    assert out.getvalue() == ""
    beat.estimate(600.0, "10 points x K = 5")
    assert out.getvalue() == "evaluate: about 10.0 min for 10 points x K = 5\n"
    beat.estimate(700.0, "x")  # within 1.5 times what was said: not again
    beat.estimate(1000.0, "x")
    assert out.getvalue().splitlines()[-1] == "evaluate: now about 16.7 min for x"
    shown = io.StringIO()
    Heartbeat("bdmc", progress=True, out=shown).estimate(2.0, "y")
    assert shown.getvalue() == "bdmc: about 2 s for y\n"


def test_without_a_bar_a_line_comes_every_few_seconds():
    out = io.StringIO()
    beat = Heartbeat("evaluate", progress=False, every=0.0, out=out)
    beat.beat(0.25)
    line = out.getvalue()
    assert line.startswith("evaluate: 25% done after ") and "left" in line
    quiet = io.StringIO()
    Heartbeat("evaluate", progress=True, every=0.0, out=quiet).beat(0.25)  # the bar says it
    assert quiet.getvalue() == ""


def test_evaluate_prints_its_estimate_with_a_bar(capsys):
    model, guide, x = _parts()
    pv.evaluate(model, guide, x, [1, 50], khat=False, batch_size=10, chunk_size=10, progress=True)
    err = capsys.readouterr().err
    assert "evaluate: about " in err and "for 20 points x K = 50" in err


def test_durations_read_in_the_unit_that_fits():
    assert [duration(s) for s in (40, 252, 7200)] == ["40 s", "4.2 min", "2.0 h"]


@pytest.mark.slow
def test_the_kept_bytes_match_the_measured_peak():
    """KEPT_BYTES is the growth of peak RSS per particle and data point with k-hat; measured
    again here (a fresh high-water mark needs a larger job than any before it in the process)."""
    model, guide, x = _parts()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    k, b = 2_000_000, 20
    pv.evaluate(model, guide, x, [k], khat=True, batch_size=b)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    assert grown <= cost.KEPT_BYTES * k * b * 1.1  # the refusal never overstates the need by much
    assert grown >= cost.KEPT_BYTES * k * b * 0.8  # nor understates it
