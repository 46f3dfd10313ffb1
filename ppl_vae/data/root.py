"""Where datasets live: a ``--data-dir`` option, else ``$PPL_VAE_DATA``, else ``./data``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import MissingDataError

ENV_VAR = "PPL_VAE_DATA"


def data_root(data_dir: str | Path | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$PPL_VAE_DATA``, else ``./data``.

    A relative ``$PPL_VAE_DATA`` is made absolute the first time it is read: against the
    working directory, or, when no such folder is there, against ``$PWD`` (the folder of the
    shell that exported it) if the folder is there. The absolute path is written back into
    ``os.environ``, so a later ``chdir`` and child processes see the same folder."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if not env:
        return Path("data")
    relative = Path(env).expanduser()
    root = relative.absolute()
    shell = os.environ.get("PWD", "")
    # A process started by a program rather than a shell (a Jupyter kernel runs in notebooks/)
    # inherits the variable but not the shell's working directory; the shell's $PWD still
    # names the folder the relative path was meant for. The working directory wins when both
    # hold the folder, as it would for any relative path.
    if not root.is_dir() and os.path.isabs(shell) and (Path(shell) / relative).is_dir():
        root = Path(shell) / relative
    if str(root) != env:
        os.environ[ENV_VAR] = str(root)
    return root


def require_files(folder: Path, names: Sequence[str], dataset: str, how: str = "") -> None:
    """Raises MissingDataError naming every file of ``names`` that is not in ``folder``."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise MissingDataError(
            f"{dataset} files are missing: put {', '.join(missing)} in {folder.resolve()}/, "
            f"or point the data root at a folder that has them with --data-dir or "
            f"${ENV_VAR}.{how}"
        )
