"""The speed suite runs from its one command (small sizes here; figures come from a full run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_run_all_quick_writes_every_report(tmp_path, data_root):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    names = {"svi_throughput", "iwae_eval", "objective_step_time", "checkpoint_cost", "summary"}
    assert {p.stem for p in tmp_path.glob("*.json")} == names
    figures = json.loads((tmp_path / "summary.json").read_text())
    assert figures == json.loads(done.stdout)
    assert 0 < figures["iwae_fraction_of_matmul_peak"] < 1.5
    assert set(figures["iwae_peak_mib_by_k"]) == {"100", "200", "1000"}
    for batch in (128, 1024):
        assert figures[f"svi_slowdown_vs_plain_loop_batch{batch}"] > 0
    ev = json.loads((tmp_path / "iwae_eval.json").read_text())
    assert ev["ppl_vae"]["iwae"] < 0 and ev["plain_loop"]["iwae"] < 0
