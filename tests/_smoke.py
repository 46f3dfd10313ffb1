"""What the CLI tests share: the recipes folder, and flags that make any recipe train in seconds."""

from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "models"
SMOKE = ["--set", "train.max_steps=3", "--set", "data.subset=200", "--set", "train.batch_size=50"]
SMOKE += ["--no-progress"]
