"""Where datasets live: a ``--data-dir`` option, else ``$PPL_VAE_DATA``, else ``./data``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import MissingDataError

ENV_VAR = "PPL_VAE_DATA"


def data_root(data_dir: str | Path | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$PPL_VAE_DATA``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path("data")


def require_files(folder: Path, names: Sequence[str], dataset: str, how: str = "") -> None:
    """Raises MissingDataError naming every file of ``names`` that is not in ``folder``."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise MissingDataError(
            f"{dataset} files are missing: put {', '.join(missing)} in {folder.resolve()}/, "
            f"or point the data root at a folder that has them with --data-dir or "
            f"${ENV_VAR}.{how}"
        )
