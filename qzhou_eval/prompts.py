"""Print the exact model input of every task and side: ``qzhou-eval prompts``.

    qzhou-eval prompts model=qzhou_embedding benchmark=mteb_eng_v2
    python -m qzhou_eval.prompts model=qzhou_embedding benchmark=mteb_eng_v2   # the same

One JSON line per (task, side): ``{"task": ..., "side": ..., "input": ...}`` where ``input`` is what
the model receives for the text ``TEXT``. ``side`` is ``query``/``document`` for tasks mteb encodes
with a prompt type (retrieval, reranking) and ``none`` for the others. Diff two recipes with it.

Two lines on stderr state what else the model config decides about the vectors: its numerics and
its Token Prepending layers (stdout stays pure JSON lines).
"""

from __future__ import annotations

from qzhou_eval.early_stop import stop_early

stop_early(__name__)  # first: a Ctrl-C as the imports below run gets the command's line

import dataclasses
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from qzhou_eval.config import hydra_app
from qzhou_eval.config.app import run_as_process
from qzhou_eval.config.spec import fidelity_lines, model_spec, resolve_model_path
from qzhou_eval.errors import ConfigError, shown
from qzhou_eval.recipe import Recipe

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

SAMPLE_TEXT = "TEXT"


def prompt_lines(recipe: Recipe, tasks: list[AbsTask], text: str = SAMPLE_TEXT) -> Iterator[dict]:
    from qzhou_eval.benchmarks import sides_of

    for task in tasks:
        name = task.metadata.name
        for side in sides_of(task):
            yield {"task": name, "side": side, "input": recipe.format(name, side, text)}


def render(cfg: DictConfig) -> list[dict[str, Any]]:
    text = cfg.get("text", SAMPLE_TEXT)
    if not isinstance(text, str):  # Hydra parsed it (null, a list, a number): not what was typed
        raise ConfigError(
            f"text={shown(text)} is not a text; quote it for Hydra, e.g. '+text=\"how are you\"'"
        )
    # (imported here: mteb, seconds, once the command handles Ctrl-C; see qzhou_eval.lazy)
    from qzhou_eval.benchmarks import load_benchmark_tasks, sides_of
    from qzhou_eval.runs.settings import check_values

    # every setting a run checks, checked: a value the run refuses is not shown as its inputs
    recipe = check_values(cfg, resolve_path=False).recipe
    _check_folder(cfg.model, recipe)
    tasks = load_benchmark_tasks(cfg.benchmark)
    recipe.check_tasks(t.metadata.name for t in tasks)
    recipe.warn_unreached({t.metadata.name: sides_of(t) for t in tasks})
    return list(prompt_lines(recipe, tasks, text))


def _check_folder(model: DictConfig, recipe: Recipe) -> None:
    """A run's check of a sentence-transformers folder's own settings (``model.folder_settings:
    check``), where the config names a model: the inputs shown are those a run evaluates (it
    refuses a folder whose prompts the recipe lacks)."""
    if model.get("folder_settings") != "check" or OmegaConf.is_missing(model, "name"):
        return
    from qzhou_eval.runs.model_folder import check_folder_settings

    spec = model_spec(model, resolve_path=False)
    if spec.path.startswith("pkg:"):  # a package's folder, where the package is installed
        try:
            spec = dataclasses.replace(spec, path=resolve_model_path(spec.path))
        except ConfigError:  # (the inputs need no model: a run says what is missing)
            return
    check_folder_settings(spec, recipe)


@hydra_app("mteb", kept=None)
def main(cfg: DictConfig) -> None:
    notes = fidelity_lines(cfg.model)  # first: a bad model setting fails before any work
    lines = render(cfg)  # (then the notes: none before an error line)
    for note in notes:
        print(note, file=sys.stderr)
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    run_as_process(main)
