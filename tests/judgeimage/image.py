"""Where the judge image's tar is (`make images` writes it; $KHALA_JUDGE_IMAGE names another)
and what its recipe says."""

from __future__ import annotations

import os
from pathlib import Path

from khala.images.recipe import Recipe, load_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE_PATH = REPO / "images" / "judge.toml"
JUDGE_TAR = os.environ.get("KHALA_JUDGE_IMAGE") or str(REPO / "images" / "out" / "judge.tar")
MISSING = f"no judge image at {JUDGE_TAR}: `make images` builds it"


def present() -> bool:
    return os.path.isfile(JUDGE_TAR)


def recipe() -> Recipe:
    return load_recipe(str(RECIPE_PATH))
