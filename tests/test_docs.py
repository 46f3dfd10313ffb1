"""Every code block in README.md and docs/*.md runs.

Fenced blocks are read from the Markdown by their language:

- ``python``: executed; the blocks of one page share one namespace.
- ``bash``, ``sh``, ``shell``: run as commands, one per line (``\\`` continues a line);
  ``console``: the lines that start with ``$ `` are the commands, the rest is output.
- ``toml``: parsed with tomllib.
- anything else (``text`` for output, ``json``, ...) is shown, not run.

A block right after ``<!-- docs-test: skip (why) -->`` is not run and reports a skip with that
reason: for long runs (real training, K = 5000, torchrun, the benchmarks), each next to a quick
version of the same commands that does run.

One test per block, ``FILE:LINE``. The blocks of a page run in order, in one temporary folder
where ``models/`` and ``benchmarks/`` are linked in, with ``$PPL_VAE_DATA`` set; so a block may use
what an earlier block of its page wrote or defined, and a failure stops the rest of its page.
Importing torch and Pyro takes seconds, so every page runs in one worker process that imports
them once: Python blocks are exec'd there, and command lines that start ``ppl-vae``,
``python -m ppl_vae``, ``python SCRIPT.py`` or ``python -m MODULE`` are run there too (through
``ppl_vae.cli.main`` and ``runpy``, with their own ``sys.argv``), while any other line, or one
with shell syntax (pipes, redirections, ``$``), goes to ``bash``. With
``PPL_VAE_DOCS_SUBPROCESS=1`` every command block goes to ``bash`` as a whole, as a user's shell
would run it (slower).

A user follows the pages one after another in one clone, so no two pages train into the same run
dir, every documented ``--out`` and ``--figure`` is under ``runs/``, and after each page ran, every
file it wrote is one that ``.gitignore`` covers (``git status`` stays clean).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
import traceback
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINKED = ["models", "benchmarks"]  # linked into each page's working folder
RUN = {"python", "bash", "sh", "shell", "console", "toml"}
SHELLS = {"bash", "sh", "shell", "console"}
PAGE_TIMEOUT_S = 600

FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s*(?:\((?P<why>.*)\))?\s*-->\s*$")
SHELL_SYNTAX = re.compile(r"[|;&<>`$(){}*?]")
ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")


@dataclass(frozen=True)
class Block:
    page: str  # path relative to the repo
    line: int  # line of the block's first code line, 1-based
    lang: str
    code: str
    skip: str | None  # the reason, if marked to skip

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    lines = path.read_text().splitlines()
    page = str(path.relative_to(REPO))
    blocks, i, previous = [], 0, ""
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        fence, lang, start = m["fence"], m["lang"].lower(), i + 1
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            i += 1
        skip = SKIP.match(previous)
        why = (skip["why"] or "marked to skip") if skip else None
        blocks.append(Block(page, start + 1, lang, "\n".join(lines[start:i]) + "\n", why))
        previous, i = "", i + 1
    return blocks


def commands(block: Block) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and blanks dropped."""
    text = block.code
    if block.lang == "console":
        text = "\n".join(ln[2:] for ln in text.splitlines() if ln.startswith("$ "))
    out, pending = [], ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append(line)
    return out


# --- the worker: runs the blocks of one page in order ----------------------------------------


def _in_process(argv: list[str]):
    """How to run ``argv`` in the worker, or None for bash."""
    if argv[0] == "ppl-vae":
        return "cli", argv[1:]
    if argv[0] not in ("python", "python3") or len(argv) < 2:
        return None
    if argv[1] == "-m" and len(argv) > 2:
        if argv[2] == "ppl_vae":
            return "cli", argv[3:]
        if argv[2] in ("pytest", "pip", "venv", "torch.distributed.run"):
            return None
        return "module", argv[2:]
    if argv[1].endswith(".py"):
        return "script", argv[1:]
    return None


def _run_in_process(kind: str, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    import runpy

    import pyro

    pyro.clear_param_store()  # a fresh process would start with an empty one
    out = io.StringIO()
    saved_env, saved_argv, saved_path = dict(os.environ), sys.argv, list(sys.path)
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                if kind == "cli":
                    from ppl_vae.cli import main

                    rc = main(argv)
                elif kind == "module":
                    sys.argv = [argv[0], *argv[1:]]
                    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
                    rc = 0
                else:
                    sys.argv = list(argv)
                    sys.path.insert(0, str(Path(argv[0]).resolve().parent))
                    runpy.run_path(argv[0], run_name="__main__")
                    rc = 0
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc(file=out)
                rc = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv, sys.path[:] = saved_argv, saved_path
    return rc or 0, out.getvalue()


def _bash(script: str, timeout: float) -> tuple[int, str]:
    p = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return p.returncode, p.stdout + p.stderr


def _run_shell(block: Block, in_process: bool) -> tuple[bool, str]:
    lines = commands(block)
    if not in_process:
        rc, out = _bash("\n".join(lines), PAGE_TIMEOUT_S)
        return rc == 0, out
    log = []
    for line in lines:
        log.append(f"$ {line}")
        if line.startswith("export ") and not SHELL_SYNTAX.search(line.split("=", 1)[0]):
            key, value = line[len("export ") :].split("=", 1)
            os.environ[key.strip()] = os.path.expandvars(shlex.split(value)[0] if value else "")
            continue
        how = None
        if not SHELL_SYNTAX.search(line):
            argv = shlex.split(line, comments=True)
            env = {}
            while argv and ASSIGNMENT.match(argv[0]):
                key, value = argv.pop(0).split("=", 1)
                env[key] = value
            how = _in_process(argv) if argv else None
        if how is None:
            rc, out = _bash(line, PAGE_TIMEOUT_S)
        else:
            rc, out = _run_in_process(*how, env)
        log.append(out.rstrip())
        if rc != 0:
            log.append(f"(exit status {rc})")
            return False, "\n".join(log)
    return True, "\n".join(log)


def _run_python(block: Block, namespace: dict) -> tuple[bool, str]:
    out = io.StringIO()
    code = "\n" * (block.line - 1) + block.code  # tracebacks then point into the page
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            exec(compile(code, str(REPO / block.page), "exec"), namespace)
        except BaseException:
            traceback.print_exc(file=out)
            return False, out.getvalue()
    return True, out.getvalue()


def run_page(blocks: list[Block], cwd: Path, in_process: bool = True) -> list[dict]:
    """Runs the blocks of one page in order in ``cwd``; one result per block."""
    import pyro

    for name in LINKED:
        if not (cwd / name).exists():
            (cwd / name).symlink_to(REPO / name, target_is_directory=True)
    os.chdir(cwd)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    namespace = {"__name__": "__docs__"}
    results, failed = [], None
    for block in blocks:
        t0 = time.perf_counter()
        if block.skip is not None:
            ok, status, out = True, "skip", block.skip
        elif failed is not None:
            ok, status, out = True, "skip", f"not run: the block at {failed} failed"
        elif block.lang == "python":
            ok, out = _run_python(block, namespace)
            status = "ok" if ok else "fail"
        elif block.lang == "toml":
            try:
                tomllib.loads(block.code)
                ok, out = True, ""
            except tomllib.TOMLDecodeError as e:
                ok, out = False, f"not valid TOML: {e}"
            status = "ok" if ok else "fail"
        else:
            ok, out = _run_shell(block, in_process)
            status = "ok" if ok else "fail"
        if not ok:
            failed = block.where
        results.append({"status": status, "output": out, "seconds": time.perf_counter() - t0})
    return results


def _worker() -> None:
    """Reads one JSON request per line on stdin, answers one JSON line on the original stdout.
    Anything the blocks print outside the captured streams goes to stderr."""
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", closefd=False)
    in_process = os.environ.get("PPL_VAE_DOCS_SUBPROCESS", "") in ("", "0")
    import pyro  # noqa: F401
    import torch  # noqa: F401

    import ppl_vae.cli  # noqa: F401  (the imports every page needs, once)

    for request in sys.stdin:
        req = json.loads(request)
        blocks = [Block(**b) for b in req["blocks"]]
        answer.write(json.dumps(run_page(blocks, Path(req["cwd"]), in_process)) + "\n")
        answer.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    _worker()
    sys.exit(0)


# --- the tests ---------------------------------------------------------------------------------

import pytest  # noqa: E402

BLOCKS = [b for page in PAGES for b in extract_blocks(page)]
RUNNABLE = [b for b in BLOCKS if b.lang in RUN]


class Worker:
    """One worker process for the session; runs each page once, when a test first asks."""

    def __init__(self, tmp: pytest.TempPathFactory):
        self.tmp, self.results, self.proc, self.cwds = tmp, {}, None, {}
        self.log = tmp.mktemp("docs_worker") / "stderr.txt"

    def _start(self) -> None:
        env = dict(os.environ)
        env.setdefault("PPL_VAE_DATA", str(REPO.parent / "shared" / "data"))
        env["MPLBACKEND"] = "Agg"
        env.setdefault("OMP_NUM_THREADS", "1")  # small tensors: one thread is faster
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.log, "w"),  # noqa: SIM115
            text=True,
            env=env,
            cwd=REPO,
        )
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.answers.put(line)
        self.answers.put(None)

    def page(self, page: str) -> list[dict]:
        if page not in self.results:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            blocks = [b for b in RUNNABLE if b.page == page]
            cwd = self.tmp.mktemp(re.sub(r"\W", "_", page))
            self.cwds[page] = cwd
            self.proc.stdin.write(
                json.dumps({"cwd": str(cwd), "blocks": [asdict(b) for b in blocks]}) + "\n"
            )
            self.proc.stdin.flush()
            try:
                line = self.answers.get(timeout=PAGE_TIMEOUT_S)
            except queue.Empty:
                self.proc.kill()
                line = None
            if line is None:
                tail = self.log.read_text()[-4000:]
                self.proc = None
                pytest.fail(f"the docs worker died or hung on {page}:\n{tail}", pytrace=False)
            self.results[page] = dict(zip([b.where for b in blocks], json.loads(line), strict=True))
        return self.results[page]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def docs_worker(tmp_path_factory):
    worker = Worker(tmp_path_factory)
    yield worker
    worker.close()


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_code_block_runs(block: Block, docs_worker: Worker) -> None:
    result = docs_worker.page(block.page)[block.where]
    if result["status"] == "skip":
        pytest.skip(f"{block.where}: {result['output']}")
    if result["status"] == "fail":
        pytest.fail(
            f"the {block.lang} block at {block.where} failed:\n{block.code}\n"
            f"--- its output ---\n{result['output']}",
            pytrace=False,
        )


def test_every_block_names_its_language() -> None:
    bare = [b.where for b in BLOCKS if not b.lang]
    assert not bare, f"fenced blocks without a language (use text for output): {bare}"


def test_every_skip_marker_is_on_a_block() -> None:
    """A skip marker followed by prose instead of a block would silently skip nothing."""
    stray = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if SKIP.match(line.strip()):
                rest = [ln for ln in lines[i + 1 :] if ln.strip()]
                if not rest or not FENCE.match(rest[0]):
                    stray.append(f"{page.relative_to(REPO)}:{i + 1}")
    assert not stray, f"docs-test skip markers not followed by a code block: {stray}"


def test_pages_are_found() -> None:
    assert (REPO / "README.md") in PAGES and len(PAGES) > 1


# --- what the pages write: a user follows them one after another in one clone ----------------

TRAIN = re.compile(r"(?:^|\s)(?:ppl-vae|-m\s+ppl_vae)\s+train\s")
BENCHMARK = re.compile(r"(?:^|\s)python3?\s+benchmarks/\w+\.py\s")  # its --out holds runs
OUT = re.compile(r"--(?:out|resume)[=\s]+(?P<dir>\S+)")
OUTPUT_FLAG = re.compile(r"--(?:out|figure)[=\s]+(?P<path>\S+)")
PY_RUN_DIR = re.compile(
    r"""(?:run_dir\s*=\s*|train_recipe\(\s*\w+\s*,\s*)(?:["'](?P<dir>[^"']+)["']|(?P<var>\w+))"""
)
PY_ASSIGN = re.compile(r"""^\s*(?P<var>\w+)\s*=\s*["'](?P<dir>[^"']+)["']""", re.M)


def _recipe_name(path: str) -> str:
    return tomllib.loads((REPO / path).read_text())["name"]


def run_dirs_trained(page: Path) -> set[str]:
    """The run dirs a page's blocks (skipped ones too) train into: ``--out`` (or ``--resume``)
    of each ``train`` command, else ``runs/<recipe name>``, and the ``--out`` folder of each
    benchmark script; ``run_dir=`` and ``train_recipe``'s second argument in Python, as a string
    or a variable set to one on the page."""
    dirs: set[str] = set()
    blocks = extract_blocks(page)
    assigned = {
        m["var"]: m["dir"] for b in blocks if b.lang == "python" for m in PY_ASSIGN.finditer(b.code)
    }
    for b in blocks:
        if b.lang in SHELLS:
            for line in commands(b):
                if BENCHMARK.search(line) and (m := OUT.search(line)):
                    dirs.add(m["dir"].rstrip("/"))
                if not TRAIN.search(line):
                    continue
                if m := OUT.search(line):
                    dirs.add(m["dir"].rstrip("/"))
                else:
                    recipe = next(w for w in line.split() if w.endswith(".toml"))
                    dirs.add(f"runs/{_recipe_name(recipe)}")
        elif b.lang == "python":
            for m in PY_RUN_DIR.finditer(b.code):
                d = m["dir"] or assigned.get(m["var"])
                if d is not None and d.startswith("runs/"):
                    dirs.add(d.rstrip("/"))
    return dirs


def test_no_two_pages_train_into_the_same_run_dir() -> None:
    """Otherwise the second page's ``train`` stops (the dir exists) and its ``evaluate`` scores
    the first page's model."""
    owners = defaultdict(list)
    for page in PAGES:
        for d in run_dirs_trained(page):
            owners[d].append(str(page.relative_to(REPO)))
    shared = {d: pages for d, pages in owners.items() if len(pages) > 1}
    assert not shared, f"run dirs trained into by more than one page: {shared}"
    assert "runs/quick" in owners and len(owners) > 20  # the parse finds the pages' runs


def test_documented_outputs_go_under_runs() -> None:
    """Every ``--out`` and ``--figure`` of a documented command (skipped blocks too) names a
    path under ``runs/``, or a figure of the docs themselves (``docs/*.png``, what the page's
    measurement made), so that nothing a user runs shows up in ``git status``."""
    stray = []
    for page in PAGES:
        for b in extract_blocks(page):
            if b.lang not in SHELLS:
                continue
            for line in commands(b):
                for m in OUTPUT_FLAG.finditer(line):
                    path = m["path"].strip("\"'")
                    if not (path.startswith("runs/") or re.fullmatch(r"docs/[\w-]+\.png", path)):
                        stray.append(f"{b.where}: {m[0]}")
    assert not stray, f"documented outputs outside runs/: {stray}"


def _walk_files(root: Path) -> list[str]:
    found = []
    for here, dirs, files in os.walk(root):
        if Path(here) == root:
            dirs[:] = [d for d in dirs if d not in LINKED]
        found += [str((Path(here) / f).relative_to(root)) for f in files]
    return found


PAGES_RUN = sorted({b.page for b in RUNNABLE if b.skip is None})


@pytest.mark.parametrize("page", PAGES_RUN)
def test_a_page_leaves_git_status_clean(page: str, docs_worker: Worker) -> None:
    """After a page's blocks ran in its folder (a stand-in for the clone), every file they wrote
    is one the repository's ``.gitignore`` covers, and each run dir they trained (one holding a
    ``recipe.toml`` or ``checkpoint.pt``) is one that ``run_dirs_trained`` finds on the page."""
    docs_worker.page(page)
    cwd = docs_worker.cwds[page]
    files = _walk_files(cwd)
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(files),
        capture_output=True,
        text=True,
    ).stdout.split()
    seen = sorted(set(files) - set(ignored))
    assert not seen, f"{page} wrote files that git status would show: {seen[:20]}"
    trained = {
        str(Path(f).parent) for f in files if Path(f).name in ("recipe.toml", "checkpoint.pt")
    }
    trained = {d for d in trained if d.startswith("runs/")}
    found = run_dirs_trained(REPO / page)
    missed = sorted(d for d in trained if not any(d == f or d.startswith(f + "/") for f in found))
    assert not missed, f"{page} trained into run dirs the parse does not see: {missed}"
