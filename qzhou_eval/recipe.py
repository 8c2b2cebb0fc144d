"""The prompting recipe: ``(task, side, text) -> exact model input``. Pure functions, no torch.

A recipe is data (``conf/prompts/*.yaml``). The rules reproduce the official QZhou evaluation
scripts:

- the instruction prefix (``instruction_template`` filled with the task's instruction) goes on a
  text when mteb encodes it as a query, and on every text of the tasks listed in
  ``instruction_on_all_texts`` (their documents, and the texts of task types mteb encodes without
  a prompt type: STS, classification, clustering, ...); never otherwise;
- a text that is exactly ``""`` becomes ``empty_text`` (``"Null"``) before the prefix is added;
- an optional ``input_template`` (QZhou-Embedding-Zh's PromptEOL template) then wraps prefix + text.

The keys were named ``template``, ``both_sides`` and ``wrapper`` before; a recipe that uses those
still works for one release, with a warning (:data:`RENAMED_KEYS`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from qzhou_eval.config.deprecation import warn_once
from qzhou_eval.errors import ConfigError, shown

Side = Literal["query", "document", "none"]
SIDES: tuple[Side, ...] = ("query", "document", "none")
MISSING_POLICIES = ("error", "no_instruction")
# Deprecated recipe key -> its name now (same meaning). Old keys work for one release.
RENAMED_KEYS = {
    "template": "instruction_template",
    "both_sides": "instruction_on_all_texts",
    "wrapper": "input_template",
}
RECIPE_KEYS = (
    "name",
    "instruction_template",
    "instructions",
    "instruction_on_all_texts",
    "empty_text",
    "input_template",
    "on_missing_instruction",
)


@dataclass(frozen=True)
class Recipe:
    """How raw task texts become model inputs."""

    name: str
    # The instruction prefix; "{instruction}" is replaced by the task's instruction.
    instruction_template: str = "{instruction}"
    instructions: Mapping[str, str] = field(default_factory=dict)
    # Tasks whose every text gets the instruction, not only their queries.
    instruction_on_all_texts: frozenset[str] = frozenset()
    empty_text: str | None = None
    # Wraps prefix + text; "{text}" marks where they go. None = no wrapping.
    input_template: str | None = None
    # What to do for a task the recipe has no instruction for. "error" refuses to run it (a
    # silently unprompted task is the classic cause of a score that does not reproduce).
    on_missing_instruction: str = "error"

    @property
    def uses_instructions(self) -> bool:
        return bool(self.instructions)

    def prefix(self, task: str, side: Side) -> str:
        """The instruction prefix for one task and side ("" when none applies)."""
        if side != "query" and task not in self.instruction_on_all_texts:
            return ""
        instruction = self.instructions.get(task)
        if not instruction:
            return ""
        return self.instruction_template.format(instruction=instruction)

    def format(self, task: str, side: Side, text: str) -> str:
        """The exact string the model receives for ``text`` of ``task`` on ``side``."""
        return self.format_with_span(task, side, text)[0]

    def format_with_span(self, task: str, side: Side, text: str) -> tuple[str, tuple[int, int]]:
        """The model input and the character span of the task text inside it.

        The span lets ``truncation: inner`` cut only the text, keeping the instruction and the
        input template intact.
        """
        if text == "" and self.empty_text is not None:
            text = self.empty_text
        prefix = self.prefix(task, side)
        head, tail = "", ""
        if self.input_template is not None:
            head, _, tail = self.input_template.partition("{text}")
        start = len(head) + len(prefix)
        return head + prefix + text + tail, (start, start + len(text))

    def check_tasks(self, task_names: Iterable[str]) -> None:
        """Fail, naming the task, when a task to run has no instruction in an instructed recipe."""
        if not self.uses_instructions or self.on_missing_instruction != "error":
            return
        missing = [t for t in task_names if t not in self.instructions]
        if missing:
            raise ConfigError(
                f"prompts={self.name}: no instruction for task(s) {', '.join(missing)}; add them "
                "under prompts.instructions or set prompts.on_missing_instruction=no_instruction"
            )

    def named_tasks(self) -> frozenset[str]:
        """Tasks the recipe treats specially (an instruction, or the instruction on every text);
        every other task gets the same treatment."""
        return frozenset(self.instructions) | self.instruction_on_all_texts

    def legacy_fields(self) -> dict[str, Any]:
        """What qzhou-eval 0.1 hashed into its folder records (read only to migrate those)."""
        return {
            "template": self.instruction_template,
            "instructions": dict(sorted(self.instructions.items())),
            "both_sides": sorted(self.instruction_on_all_texts),
            "empty_text": self.empty_text,
            "wrapper": self.input_template,
        }


def recipe_from_config(cfg: Mapping[str, Any], known_tasks: Container[str] | None = None) -> Recipe:
    """Build and validate a Recipe from the ``prompts`` config group.

    Every key is read from the config (``conf/prompts/none.yaml`` states them all; a recipe file
    can start from it with ``defaults: [none, _self_]``). ``known_tasks``: every task name the
    recipe may legitimately mention (all tasks of every benchmark the harness knows). A recipe
    naming anything else is a typo and fails.
    """
    values = _current_keys(cfg)
    name = str(values["name"])
    template = values["instruction_template"]
    if not isinstance(template, str) or "{instruction}" not in template:
        raise ConfigError(f"prompts.instruction_template of {name} must contain '{{instruction}}'")
    try:
        template.format(instruction="")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"prompts.instruction_template of {name} ({template!r}) has a placeholder other than "
            f"{{instruction}} ({type(e).__name__}: {e}); write a literal brace twice, {{{{ or }}}}"
        ) from None
    input_template = values["input_template"]
    if input_template is not None and "{text}" not in str(input_template):
        raise ConfigError(f"prompts.input_template of {name} must contain '{{text}}'")
    policy = values["on_missing_instruction"]
    if policy not in MISSING_POLICIES:
        raise ConfigError(
            f"prompts.on_missing_instruction={shown(policy)} is unknown; "
            f"use one of {MISSING_POLICIES}"
        )
    instructions = _instructions(name, values["instructions"])
    on_all_texts = frozenset(str(t) for t in (values["instruction_on_all_texts"] or []))
    if known_tasks is not None:
        unknown = sorted(t for t in set(instructions) | on_all_texts if t not in known_tasks)
        if unknown:
            raise ConfigError(
                f"prompts={name}: unknown task name(s) {', '.join(unknown)} "
                "(not a task of any known benchmark)"
            )
    empty_text = values["empty_text"]
    return Recipe(
        name=name,
        instruction_template=template,
        instructions=instructions,
        instruction_on_all_texts=on_all_texts,
        empty_text=None if empty_text is None else str(empty_text),
        input_template=None if input_template is None else str(input_template),
        on_missing_instruction=str(policy),
    )


def _instructions(name: str, raw: Any) -> dict[str, str]:
    """Task -> instruction text; anything else is refused (a null or a list would otherwise be
    pasted into the model input as Python prints it)."""
    if raw is None or isinstance(raw, str) or not hasattr(raw, "items"):
        raise ConfigError(
            f"prompts.instructions of {name} is {shown(raw)}: give a map of task to instruction "
            "({} for none)"
        )
    out = {}
    for task, text in raw.items():
        if not isinstance(text, str):
            raise ConfigError(
                f"prompts.instructions.{task} of {name} is {shown(text)}: give a text (quote it; "
                f"remove the task's instruction with '~prompts.instructions.{task}')"
            )
        out[str(task)] = text
    return out


def _current_keys(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Every recipe key by its current name; a deprecated name is read (with a warning) for one
    release, and an error when its new name is set too."""
    name = cfg.get("name", "?")
    values: dict[str, Any] = {}
    for old, new in RENAMED_KEYS.items():
        if old not in cfg:
            continue
        if new in cfg:
            raise ConfigError(
                f"prompts={name}: set {new} or the deprecated {old}, not both ({old} is the old "
                f"name of {new}: rename it, or drop the inherited {new} with ~prompts.{new})"
            )
        warn_once(f"warning: prompts.{old} is deprecated; use prompts.{new} (same meaning)")
        values[new] = cfg[old]
    for key in RECIPE_KEYS:
        if key in values:
            continue
        if key not in cfg:
            raise ConfigError(
                f"prompts={name}: the recipe does not set {key} (conf/prompts/none.yaml sets "
                "every key; start a recipe from it with defaults: [none, _self_])"
            )
        values[key] = cfg[key]
    return values


def side_of(prompt_type: Any) -> Side:
    """Map mteb's ``prompt_type`` (PromptType.query / .document / None) to a recipe side."""
    if prompt_type is None:
        return "none"
    value = getattr(prompt_type, "value", prompt_type)
    if value == "query":
        return "query"
    if value in ("document", "passage"):
        return "document"
    raise ValueError(f"unknown mteb prompt_type {prompt_type!r}")
