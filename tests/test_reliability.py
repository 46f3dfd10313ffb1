"""Crashes and resume: exact resume, periodic checkpoints, NaN loss, Ctrl-C, full disk, SIGKILL,
and checkpoints from untrusted files.

"Exact" means bit for bit: every comparison here is ``torch.equal`` or ``==`` on floats, since a
resumed run replays the same floating-point operations in the same order as one that never
stopped.
"""

import errno
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _compare import assert_same
from pyro.infer import ELBO, Trace_ELBO

from ppl_vae import build_guide, build_model, fit, storage
from ppl_vae.data import Splits
from ppl_vae.layout import STATE
from ppl_vae.storage import CheckpointError, WriteError, load_checkpoint, save_checkpoint
from ppl_vae.training.svi import CHECKPOINT, METRICS, TrainingDiverged

REPO = Path(__file__).resolve().parents[1]
X_DIM, Z_DIM = 6, 2


def _data() -> Splits:
    """Gray values under dynamic binarization: each epoch draws new bits from the generator."""
    gray = torch.rand(60, X_DIM, generator=torch.Generator().manual_seed(0))
    fixed = torch.bernoulli(gray[40:], generator=torch.Generator().manual_seed(1))
    return Splits(gray[:40], fixed[:10], fixed[10:], binarize="dynamic")


def _parts():
    torch.manual_seed(0)
    model = build_model(X_DIM, Z_DIM, likelihood="bernoulli", hidden=[5])
    guide = build_guide("diagonal", X_DIM, Z_DIM, hidden=[5])
    return model, guide


class Annealed(Trace_ELBO):
    """Two vectorized particles (Pyro guesses the plate nesting lazily) and an epoch hook."""

    def __init__(self):
        super().__init__(num_particles=2, vectorize_particles=True)

    def begin_epoch(self, epoch):
        return {"beta": 1.0 / (1 + epoch)}


def _train(run_dir, loss=None, **kw):
    """Three batches per epoch (16, 16, 8 of 40 points)."""
    model, guide = _parts()
    kw = {"epochs": 10, "batch_size": 16, "lr": 0.05, "seed": 3, "progress": False, **kw}
    result = fit(model, guide, _data(), objective=loss or Annealed(), run_dir=run_dir, **kw)
    return result, model, guide


def _rows(result):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]


@pytest.mark.parametrize("n", [1, 3, 4], ids=["first-step", "epoch-end", "mid-epoch"])
def test_n_steps_resume_n_more_equals_2n_steps(tmp_path, n):
    one_go, *_ = _train(tmp_path / "a", max_steps=2 * n)
    _train(tmp_path / "b", max_steps=n)
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["position"]["step"] == n
    resumed, *_ = _train(tmp_path / "b", max_steps=2 * n, resume=True)
    # Parameters, Adam's moments, every RNG, the position in the epoch and the metrics history.
    assert_same(
        load_checkpoint(tmp_path / "a" / CHECKPOINT), load_checkpoint(tmp_path / "b" / CHECKPOINT)
    )
    assert _rows(resumed) == _rows(one_go)
    assert resumed.test_elbo == one_go.test_elbo and resumed.steps == 2 * n
    assert (tmp_path / "a" / METRICS).read_text().count("\n") == len(one_go.history) + 1


class Wrapped(ELBO):
    """A loss that delegates to a vectorized ELBO it holds, as a KL warm-up wrapper does."""

    def __init__(self):
        super().__init__()
        self.base = Annealed()

    def loss(self, model, guide, *args, **kwargs):
        return self.base.loss(model, guide, *args, **kwargs)

    def loss_and_grads(self, model, guide, *args, **kwargs):
        return self.base.loss_and_grads(model, guide, *args, **kwargs)

    def _get_trace(self, model, guide, args, kwargs):
        return self.base._get_trace(model, guide, args, kwargs)


def test_resume_is_exact_with_a_wrapped_vectorized_loss(tmp_path):
    one_go, *_ = _train(tmp_path / "a", loss=Wrapped(), max_steps=8)
    _train(tmp_path / "b", loss=Wrapped(), max_steps=4)
    resumed, *_ = _train(tmp_path / "b", loss=Wrapped(), max_steps=8, resume=True)
    assert_same(
        load_checkpoint(tmp_path / "a" / CHECKPOINT), load_checkpoint(tmp_path / "b" / CHECKPOINT)
    )
    assert _rows(resumed) == _rows(one_go)


def test_checkpoints_hold_only_tensors_and_plain_values(tmp_path):
    _train(tmp_path, max_steps=4)
    raw = torch.load(tmp_path / CHECKPOINT, weights_only=True)  # what an untrusting reader does

    def leaves(x):
        if isinstance(x, dict):
            assert all(isinstance(k, str | int) for k in x)
            return [v for value in x.values() for v in leaves(value)]
        if isinstance(x, list | tuple):
            return [v for value in x for v in leaves(value)]
        return [x]

    kinds = {type(v) for v in leaves(raw)}
    assert kinds <= {torch.Tensor, int, float, str, bool, type(None)}, kinds
    assert raw["position"]["step"] == 4 and raw["position"]["batch"] == 1
    assert len(raw["rng_ranks"]) == 1 and not {"rng", "epoch", "step"} & set(raw)  # no copies


def test_checkpoints_of_the_previous_layout_resume_exactly(tmp_path):
    """Files written before the layout lost its copies also hold ``rng``, ``epoch`` and
    ``step``; they resume as before."""
    one_go, *_ = _train(tmp_path / "a", max_steps=8)
    _train(tmp_path / "b", max_steps=4)
    state = load_checkpoint(tmp_path / "b" / CHECKPOINT)
    del state["format"], state["version"]
    position = state["position"]
    old = {**state, "rng": state["rng_ranks"][0], "epoch": position["epoch"]}
    save_checkpoint(tmp_path / "b" / CHECKPOINT, {**old, "step": position["step"]})
    resumed, *_ = _train(tmp_path / "b", max_steps=8, resume=True)
    assert _rows(resumed) == _rows(one_go) and resumed.test_elbo == one_go.test_elbo
    assert_same(
        load_checkpoint(tmp_path / "a" / CHECKPOINT), load_checkpoint(tmp_path / "b" / CHECKPOINT)
    )


def test_resume_removes_what_a_write_killed_half_way_left(tmp_path):
    _train(tmp_path, max_steps=2)
    stale = tmp_path / f".{CHECKPOINT}.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    _train(tmp_path, max_steps=3, resume=True)
    assert not stale.exists() and load_checkpoint(tmp_path / CHECKPOINT)["position"]["step"] == 3


def test_resume_runs_the_epoch_hook_again_and_finishes_the_run(tmp_path):
    one_go, model_a, _ = _train(tmp_path / "a", epochs=3)
    _train(tmp_path / "b", epochs=3, max_steps=5)  # stops in epoch 2
    resumed, model_b, _ = _train(tmp_path / "b", epochs=3, resume=True)
    assert [r["beta"] for r in resumed.history] == [1.0, 0.5, 1 / 3]
    assert [r["step"] for r in resumed.history] == [3, 6, 9]
    assert _rows(resumed) == _rows(one_go)
    for p, q in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_periodic_checkpoints(tmp_path, monkeypatch):
    import ppl_vae.training.loop as loop

    saved = []
    real = loop.save_training

    def record(path, model, guide, optim, position, history, device, rngs=None):
        saved.append((position.step, position.epoch, len(history)))
        real(path, model, guide, optim, position, history, device, rngs)

    monkeypatch.setattr(loop, "save_training", record)
    _train(tmp_path, epochs=3, checkpoint_every=2, checkpoint_steps=2)
    # Steps 2, 4 and 8 fall inside epochs; step 6 ends epoch 2 (both intervals, saved once);
    # step 9 ends the run.
    assert saved == [(2, 0, 0), (4, 1, 1), (6, 2, 2), (8, 2, 2), (9, 3, 3)]


class NanAt(Trace_ELBO):
    """Trace_ELBO whose gradient at step ``k`` is NaN (so Adam makes the parameters NaN); with
    ``loss_too``, the loss it reports is NaN as well."""

    def __init__(self, k, loss_too=True):
        super().__init__()
        self.k, self.loss_too, self.n = k, loss_too, 0

    def loss_and_grads(self, model, guide, *args, **kwargs):
        self.n += 1
        loss = super().loss_and_grads(model, guide, *args, **kwargs)
        if self.n == self.k:
            for p in [*model.parameters(), *guide.parameters()]:
                p.grad = torch.full_like(p, float("nan"))
            return float("nan") if self.loss_too else loss
        return loss


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(
        TrainingDiverged,
        match=r"step 8 \(epoch 3\).*loss became nan.*"
        r"checkpoint.pt at step 6, is kept",
    ):
        _train(tmp_path, loss=NanAt(8))
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["position"]["step"] == 6
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT, METRICS, STATE]


def test_nan_parameters_with_a_finite_loss_are_never_saved(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"step 5 .*parameters became NaN.*step 4, is kept"):
        _train(tmp_path, loss=NanAt(5, loss_too=False), checkpoint_steps=1)
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["position"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["guide"].values())


class InterruptAt(Trace_ELBO):
    """Sends this process ``times`` SIGINTs (Ctrl-C) while step ``k`` is being computed."""

    def __init__(self, k, times=1):
        super().__init__(num_particles=2, vectorize_particles=True)
        self.k, self.times, self.n = k, times, 0

    def loss_and_grads(self, model, guide, *args, **kwargs):
        self.n += 1
        if self.n == self.k:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
        return super().loss_and_grads(model, guide, *args, **kwargs)

    def begin_epoch(self, epoch):
        return {"beta": 1.0 / (1 + epoch)}


def test_ctrl_c_saves_the_last_whole_step_and_resumes_exactly(tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match=r"after step 5; saved .*--resume"):
        _train(tmp_path / "b", loss=InterruptAt(5), epochs=3)
    assert signal.getsignal(signal.SIGINT) is handler
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["position"]["step"] == 5
    resumed, *_ = _train(tmp_path / "b", epochs=3, resume=True)
    one_go, *_ = _train(tmp_path / "a", epochs=3)
    assert_same(
        load_checkpoint(tmp_path / "a" / CHECKPOINT), load_checkpoint(tmp_path / "b" / CHECKPOINT)
    )
    assert _rows(resumed) == _rows(one_go)


def test_second_ctrl_c_stops_at_once(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, loss=InterruptAt(5, times=2), epochs=3)
    at = load_checkpoint(tmp_path / CHECKPOINT)["position"]["step"]
    assert at == 3  # the end of epoch 1, not 5


def test_second_ctrl_c_says_what_is_on_disk(tmp_path):
    on_disk = r"stopped at once after step 4; .*checkpoint\.pt holds step 3\. Continue with: "
    with pytest.raises(KeyboardInterrupt, match=on_disk + r"ppl-vae train --resume"):
        _train(tmp_path / "a", loss=InterruptAt(5, times=2), epochs=3)
    with pytest.raises(KeyboardInterrupt, match=r"no checkpoint was written yet\. Start it again"):
        _train(tmp_path / "b", loss=InterruptAt(2, times=2), epochs=3)
    assert not (tmp_path / "b" / CHECKPOINT).exists()


# --- Full disk --------------------------------------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_then_enospc(f, data):
    f.write(data[: len(data) // 2])
    _enospc()


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, where):
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, {"w": torch.arange(5.0)})
    before = path.read_bytes()
    target = {
        "write": (storage, "_write", _half_then_enospc),
        "fsync": (os, "fsync", _enospc),
        "replace": (os, "replace", _enospc),
    }[where]
    with monkeypatch.context() as m:
        m.setattr(*target)
        with pytest.raises(WriteError, match=r"No space left.*previous version is intact") as e:
            save_checkpoint(path, {"w": torch.zeros(1000)})
    assert e.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]  # no temporary file left
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(5.0))


def test_full_disk_during_training_stops_with_the_last_checkpoint(tmp_path, monkeypatch):
    calls = []

    def fail_third(f, data):
        calls.append(1)
        if len(calls) == 3:
            _half_then_enospc(f, data)
        f.write(data)

    monkeypatch.setattr(storage, "_write", fail_third)
    with pytest.raises(WriteError, match=r"checkpoint\.pt.*No space left"):
        _train(tmp_path, checkpoint_steps=1)  # writes: checkpoint 1, checkpoint 2, then fails
    assert load_checkpoint(tmp_path / CHECKPOINT)["position"]["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT, STATE]


# --- Untrusted files --------------------------------------------------------------------------


class Payload:
    """Unpickling it would create a file: the sign that a loader ran code from a checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _valid_bytes(tmp_path):
    save_checkpoint(tmp_path / "good.pt", {"model": {"w": torch.randn(50, 50)}})
    return (tmp_path / "good.pt").read_bytes()


BAD_FILES = {
    "pickled-object": lambda t: _torch_bytes(
        {"format": storage.FORMAT, "version": 1, "x": Payload(t / "ran")}
    ),
    "plain-pickle": lambda t: pickle.dumps({"format": storage.FORMAT, "x": Payload(t / "ran")}),
    "truncated": lambda t: _valid_bytes(t)[:-3000],
    "random-bytes": lambda t: (
        torch.randint(
            0, 256, (5000,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        .numpy()
        .tobytes()
    ),
    "empty": lambda t: b"",
}


def _torch_bytes(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_untrusted_checkpoints_are_refused(tmp_path, kind):
    path = tmp_path / CHECKPOINT
    path.write_bytes(BAD_FILES[kind](tmp_path))
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint\.pt is damaged or holds more than "
        r"tensors.*not loaded",
    ):
        load_checkpoint(path)
    assert not (tmp_path / "ran").exists()  # no code from the file ran


def test_a_torch_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ppl_vae checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_resume_from_a_damaged_checkpoint_is_refused_and_leaves_it(tmp_path):
    _train(tmp_path, max_steps=2)
    damaged = (tmp_path / CHECKPOINT).read_bytes()[:-100]
    (tmp_path / CHECKPOINT).write_bytes(damaged)
    with pytest.raises(CheckpointError, match="damaged"):
        _train(tmp_path, max_steps=4, resume=True)
    assert (tmp_path / CHECKPOINT).read_bytes() == damaged


def test_resume_with_another_model_is_refused(tmp_path):
    _train(tmp_path, max_steps=2)
    model = build_model(X_DIM, Z_DIM + 1, likelihood="bernoulli", hidden=[5])
    guide = build_guide("diagonal", X_DIM, Z_DIM + 1, hidden=[5])
    with pytest.raises(
        CheckpointError, match=r"checkpoint\.pt does not match this run.*size mismatch"
    ):
        fit(model, guide, _data(), run_dir=tmp_path, resume=True, progress=False)


def test_resume_with_a_changed_model_keeps_the_runs_recipe(tmp_path, capsys):
    from ppl_vae.cli import main

    small = ["--set", "data.subset=100", "--set", "train.max_steps=2", "--no-progress"]
    assert main(["train", RECIPE, "--out", str(tmp_path), *small]) == 0
    before = (tmp_path / "recipe.toml").read_text()
    assert main(["train", "--resume", str(tmp_path), "--set", "model.z_dim=3"]) == 2
    assert "does not match this run" in capsys.readouterr().err
    assert (tmp_path / "recipe.toml").read_text() == before


def test_the_package_never_unpickles_user_files():
    """Checkpoints load with weights_only=True; Pyro's param-store pickles are never read."""
    src = {p: p.read_text() for p in (REPO / "ppl_vae").rglob("*.py")}
    loads = [(p.name, m) for p, s in src.items() for m in re.findall(r"torch\.load\([^)]*\)", s)]
    assert loads and all("weights_only=True" in m for _, m in loads), loads
    forbidden = r"pickle\.loads?\(|param_store\(\)\.load|ParamStoreDict|\.load_state_dict\(torch"
    assert not [p.name for p, s in src.items() if re.search(forbidden, s)]


# --- Killed and interrupted processes --------------------------------------------------------

# The child trains through the CLI. At step WAIT_AT it reports and waits to be killed; at step
# SIGINT_AT it sends itself a Ctrl-C.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from ppl_vae.cli import main
    from ppl_vae.training.loop import Loop

    wait_at, sigint_at = int(os.environ["WAIT_AT"]), int(os.environ["SIGINT_AT"])
    step, count = Loop.step, [0]  # the loop's step: eager and replayed SVI steps alike

    def step_and_signal(self, *args, **kwargs):
        count[0] += 1
        if count[0] == sigint_at:
            os.kill(os.getpid(), signal.SIGINT)
        out = step(self, *args, **kwargs)
        if count[0] == wait_at:
            print("step", count[0], flush=True)
            time.sleep(120)
        return out

    Loop.step = step_and_signal
    sys.exit(main(sys.argv[1:]))
""")
# 4 steps an epoch, 12 in all; checkpoints at steps 4, 5, 8, 10 and 12.
RECIPE = str(REPO / "models" / "linear_gaussian.toml")
SMALL = [
    "--set",
    "data.subset=200",
    "--set",
    "train.batch_size=50",
    "--set",
    "train.epochs=3",
    "--set",
    "train.checkpoint_steps=5",
    "--no-progress",
]


def _cli(args, wait_at=0, sigint_at=0):
    env = {
        **os.environ,
        "WAIT_AT": str(wait_at),
        "SIGINT_AT": str(sigint_at),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-c", CHILD, *args]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc, code=0):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err
    return err


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The checkpoint of the same run done in one go, by a separate process."""
    out = tmp_path_factory.mktemp("reference") / "run"
    _finish(_cli(["train", RECIPE, "--out", str(out), *SMALL]))
    state = load_checkpoint(out / CHECKPOINT)
    assert state["position"]["step"] == 12
    return state


def test_sigkill_then_resume_gives_the_uninterrupted_run(tmp_path, uninterrupted):
    child = _cli(["train", RECIPE, "--out", str(tmp_path), *SMALL], wait_at=7)
    assert child.stdout.readline().strip() == "step 7", child.stderr.read()
    child.send_signal(signal.SIGKILL)  # mid epoch 2, two steps past the checkpoint at step 5
    _finish(child, -signal.SIGKILL)
    assert load_checkpoint(tmp_path / CHECKPOINT)["position"]["step"] == 5
    _finish(_cli(["train", "--resume", str(tmp_path), "--no-progress"]))
    assert_same(uninterrupted, load_checkpoint(tmp_path / CHECKPOINT))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_ctrl_c_in_the_cli_exits_130_and_resumes_exactly(tmp_path, uninterrupted):
    err = _finish(_cli(["train", RECIPE, "--out", str(tmp_path), *SMALL], sigint_at=7), 130)
    assert re.search(
        r"ppl-vae train: interrupted after step 7; saved .*checkpoint\.pt\. "
        r"Continue with: ppl-vae train --resume",
        err,
    ), err
    assert load_checkpoint(tmp_path / CHECKPOINT)["position"]["step"] == 7
    _finish(_cli(["train", "--resume", str(tmp_path), "--no-progress"]))
    assert_same(uninterrupted, load_checkpoint(tmp_path / CHECKPOINT))
