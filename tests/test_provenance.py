"""Every result says where it came from, and a run knows its state (ppl_vae.provenance,
ppl_vae.runs.state): the training lock (live and stale), evaluation while training, stale rows in
compare, and the provenance fields of every result file."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ppl_vae.core.errors import RunDirError
from ppl_vae.layout import CHECKPOINT, LOCK, RECIPE, STATE
from ppl_vae.provenance import TrainingLock, _process_start, checkpoint_info, lock_holder
from ppl_vae.runs.recipe import load
from ppl_vae.runs.state import run_status

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "train.epochs=1",
    "data.options.n_train=200",
    "data.options.n_test=30",
    "data.valid_size=40",
    "train.batch_size=50",
]


def _train(out: Path, epochs: int = 1, resume: bool = False):
    from ppl_vae.runs.run import train_recipe

    if resume:  # the run's own recipe, with more epochs
        recipe = load(out / RECIPE, [f"train.epochs={epochs}"])
        return train_recipe(recipe, out, resume=True, progress=False)
    recipe = load(REPO / "models" / "linear_gaussian.toml", [*TINY, f"train.epochs={epochs}"])
    return train_recipe(recipe, out, progress=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def run_dir(tmp_path) -> Path:
    out = tmp_path / "run"
    _train(out)
    return out


@pytest.fixture
def live_process():
    """A process that runs for the test's length: its pid stands for a training elsewhere."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p
    p.kill()
    p.wait()


def _hold(run: Path, pid: int) -> None:
    """Writes the lock a training process with ``pid`` would hold."""
    doc = {"pid": pid, "pid_start": _process_start(pid), "host": socket.gethostname()}
    (run / LOCK).write_text(json.dumps({**doc, "started": "2026-01-01T00:00:00Z"}))


def _check_provenance(doc: dict, run: Path) -> None:
    prov = doc["provenance"]
    assert prov["checkpoint"]["sha256"] == _sha(run / CHECKPOINT)
    assert prov["checkpoint"] == checkpoint_info(run / CHECKPOINT)
    assert prov["recipe_sha256"] == _sha(run / RECIPE)
    assert set(prov["versions"]) == {"ppl_vae", "torch", "pyro", "arviz"}
    assert all(prov["versions"].values())
    assert prov["device"] == "cpu" and prov["threads"] >= 1 and prov["seed"] == 0
    assert prov["started"] <= prov["ended"] and prov["command"]


def test_every_result_file_records_its_checkpoint_recipe_versions_and_times(run_dir):
    import arviz as az

    from ppl_vae.runs.bdmc import bdmc_run
    from ppl_vae.runs.diagnose import diagnose_run
    from ppl_vae.runs.evaluate import evaluate_run

    summary = json.loads((run_dir / "summary.json").read_text())
    _check_provenance(summary, run_dir)
    assert summary["provenance"]["checkpoint"]["epoch"] == 1
    assert summary["provenance"]["checkpoint"]["step"] == summary["steps"] == 4

    evaluate_run(run_dir, [1, 5], subset=20, per_datapoint=True)
    doc = json.loads((run_dir / "eval.json").read_text())
    _check_provenance(doc, run_dir)
    attrs = az.from_netcdf(run_dir / "eval.nc")["bounds"].attrs
    assert json.loads(attrs["provenance"]) == doc["provenance"]
    first = (run_dir / "scores.csv").read_text().splitlines()[0]
    assert first.startswith("# provenance: ")
    assert json.loads(first.removeprefix("# provenance: ")) == doc["provenance"]
    from ppl_vae.reports.anomaly import read_scores

    assert len(read_scores(run_dir / "scores.csv")) == 20  # the comment line is skipped

    bdmc_run(run_dir, n=4, steps=[2], num_chains=2, batch_size=4)
    _check_provenance(json.loads((run_dir / "bdmc.json").read_text()), run_dir)
    diagnose_run(run_dir, subset=20, pictures=False)
    _check_provenance(json.loads((run_dir / "diagnostics.json").read_text()), run_dir)


def test_a_finished_training_leaves_no_lock_and_says_it_finished(run_dir):
    assert not (run_dir / LOCK).exists()
    assert json.loads((run_dir / STATE).read_text())["state"] == "finished"
    status = run_status(run_dir)
    assert status.state == "finished" and status.describe() == "finished (epoch 1 of 1)"


def test_a_live_lock_refuses_a_second_training_even_with_overwrite(run_dir, live_process):
    from ppl_vae.runs.run import train_recipe

    _hold(run_dir, live_process.pid)
    recipe = load(REPO / "models" / "linear_gaussian.toml", TINY)
    for kw in ({"resume": True}, {"overwrite": True}):
        with pytest.raises(RunDirError, match=f"being trained by process {live_process.pid}"):
            train_recipe(recipe, run_dir, progress=False, **kw)
    assert (run_dir / CHECKPOINT).is_file() and (run_dir / LOCK).is_file()  # nothing lost
    assert run_status(run_dir).state == "training"


def test_a_stale_lock_is_detected_and_taken_over(run_dir):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _hold(run_dir, gone.pid)
    assert lock_holder(run_dir).alive is False
    status = run_status(run_dir)
    assert status.state == "killed" and "ended without releasing its lock" in status.describe()
    _train(run_dir, epochs=2, resume=True)
    assert not (run_dir / LOCK).exists()
    assert run_status(run_dir).state == "finished"


def test_a_recycled_pid_is_not_taken_for_the_lock_holder(run_dir):
    doc = {"pid": os.getpid(), "pid_start": "1", "host": socket.gethostname(), "started": "?"}
    (run_dir / LOCK).write_text(json.dumps(doc))  # this pid, but a process started earlier
    assert lock_holder(run_dir).alive is False


def test_the_lock_records_an_interrupted_and_a_failed_training(tmp_path):
    for error, state in ((KeyboardInterrupt, "interrupted"), (ValueError, "failed")):
        with pytest.raises(error), TrainingLock(tmp_path):
            assert lock_holder(tmp_path).pid == os.getpid()
            raise error("boom")
        doc = json.loads((tmp_path / STATE).read_text())
        assert doc["state"] == state and not (tmp_path / LOCK).exists()
    assert doc["error"] == "ValueError: boom"


def test_evaluate_refuses_a_run_still_training_unless_asked(run_dir, live_process):
    from ppl_vae.runs.evaluate import evaluate_run

    _hold(run_dir, live_process.pid)
    with pytest.raises(RunDirError, match=r"still training \(epoch 2 of 1\)|--while-training"):
        evaluate_run(run_dir, [1], subset=5)
    assert not (run_dir / "eval.json").exists()
    doc = evaluate_run(run_dir, [1], subset=5, while_training=True)
    step = checkpoint_info(run_dir / CHECKPOINT)["step"]
    assert json.loads((run_dir / f"eval_step{step}" / "eval.json").read_text()) == doc
    assert doc["provenance"]["checkpoint"]["step"] == step
    assert not (run_dir / "eval.json").exists()  # never beside the run's final results


def test_evaluate_before_the_first_checkpoint_says_the_run_is_training(tmp_path, live_process):
    from ppl_vae.runs.evaluate import evaluate_run

    run = tmp_path / "young"
    run.mkdir()
    (run / RECIPE).write_text((REPO / "models" / "linear_gaussian.toml").read_text())
    _hold(run, live_process.pid)
    with pytest.raises(RunDirError, match="still training .* no checkpoint.pt yet"):
        evaluate_run(run, [1], while_training=True)


def test_compare_marks_a_stale_and_an_unverified_evaluation(run_dir, capsys):
    from ppl_vae.cli import main
    from ppl_vae.reports.tables import comparison_table, to_markdown
    from ppl_vae.runs.compare import load_result
    from ppl_vae.runs.evaluate import evaluate_run

    evaluate_run(run_dir, [1, 5], subset=20)
    assert load_result(run_dir).current is True
    _train(run_dir, epochs=2, resume=True)  # the checkpoint moves on; eval.json stays
    res = load_result(run_dir)
    assert res.current is False
    assert "scored step 4 (epoch 1)" in res.note and "now at step 8 (epoch 2)" in res.note
    md = to_markdown(comparison_table([res]))
    assert f"| {res.name} (stale) |" in md and "refresh it with: ppl-vae evaluate" in md
    assert main(["compare", str(run_dir), "--out", str(run_dir.parent / "cmp")]) == 0
    assert "warning: run: eval.json scored step 4" in capsys.readouterr().err

    doc = json.loads((run_dir / "eval.json").read_text())
    del doc["provenance"]  # as an older ppl_vae wrote it
    (run_dir / "eval.json").write_text(json.dumps(doc))
    res = load_result(run_dir)
    assert res.current is None and "(unverified)" in to_markdown(comparison_table([res]))


def test_info_reports_state_checkpoint_and_each_result(run_dir, capsys):
    from ppl_vae.cli import main
    from ppl_vae.runs.evaluate import evaluate_run

    evaluate_run(run_dir, [1], subset=5)
    _train(run_dir, epochs=2, resume=True)
    assert main(["info", str(run_dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"]["state"] == "finished" and doc["status"]["checkpoint"]["step"] == 8
    files = {r["file"]: r for r in doc["results"]}
    assert files["summary.json"]["current"] is True
    assert files["eval.json"]["current"] is False and files["eval.json"]["step"] == 4
    assert files["eval.json"]["refresh"].startswith("ppl-vae evaluate")
    assert main(["info", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "state:      finished (epoch 2 of 2)" in text and "STALE" in text
