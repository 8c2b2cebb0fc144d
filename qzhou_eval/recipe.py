"""The prompting recipe: ``(task, side, text) -> exact model input``. Pure functions, no torch.

A recipe is data (``conf/prompts/*.yaml``). The rules reproduce the official QZhou evaluation
scripts:

- the instruction prefix (``template`` filled with the task's instruction) goes on a text when mteb
  encodes it as a query, or when the task is listed in ``both_sides``; never otherwise;
- a text that is exactly ``""`` becomes ``empty_text`` (``"Null"``) before the prefix is added;
- an optional ``wrapper`` (QZhou-Embedding-Zh's PromptEOL template) then wraps prefix + text.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from qzhou_eval.errors import ConfigError

Side = Literal["query", "document", "none"]
SIDES: tuple[Side, ...] = ("query", "document", "none")
MISSING_POLICIES = ("error", "no_instruction")


@dataclass(frozen=True)
class Recipe:
    """How raw task texts become model inputs."""

    name: str
    template: str = "{instruction}"
    instructions: Mapping[str, str] = field(default_factory=dict)
    both_sides: frozenset[str] = frozenset()
    empty_text: str | None = None
    wrapper: str | None = None
    # What to do for a task the recipe has no instruction for. "error" refuses to run it (a
    # silently unprompted task is the classic cause of a score that does not reproduce).
    on_missing_instruction: str = "error"

    @property
    def uses_instructions(self) -> bool:
        return bool(self.instructions)

    def prefix(self, task: str, side: Side) -> str:
        """The instruction prefix for one task and side ("" when none applies)."""
        if side != "query" and task not in self.both_sides:
            return ""
        instruction = self.instructions.get(task)
        if not instruction:
            return ""
        return self.template.format(instruction=instruction)

    def format(self, task: str, side: Side, text: str) -> str:
        """The exact string the model receives for ``text`` of ``task`` on ``side``."""
        return self.format_with_span(task, side, text)[0]

    def format_with_span(self, task: str, side: Side, text: str) -> tuple[str, tuple[int, int]]:
        """The model input and the character span of the task text inside it.

        The span lets ``truncation: inner`` cut only the text, keeping the instruction and the
        wrapper intact.
        """
        if text == "" and self.empty_text is not None:
            text = self.empty_text
        prefix = self.prefix(task, side)
        head, tail = "", ""
        if self.wrapper is not None:
            head, _, tail = self.wrapper.partition("{text}")
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
        return frozenset(self.instructions) | self.both_sides

    def legacy_fields(self) -> dict[str, Any]:
        """What qzhou-eval 0.1 hashed into its folder records (read only to migrate those)."""
        return {
            "template": self.template,
            "instructions": dict(sorted(self.instructions.items())),
            "both_sides": sorted(self.both_sides),
            "empty_text": self.empty_text,
            "wrapper": self.wrapper,
        }


def recipe_from_config(cfg: Mapping[str, Any], known_tasks: Container[str] | None = None) -> Recipe:
    """Build and validate a Recipe from the ``prompts`` config group.

    ``known_tasks``: every task name the recipe may legitimately mention (all tasks of every
    benchmark the harness knows). A recipe naming anything else is a typo and fails.
    """
    name = str(cfg.get("name", "prompts"))
    template = cfg.get("template") or "{instruction}"
    if "{instruction}" not in template:
        raise ConfigError(f"prompts.template of {name} must contain '{{instruction}}'")
    wrapper = cfg.get("wrapper")
    if wrapper is not None and "{text}" not in wrapper:
        raise ConfigError(f"prompts.wrapper of {name} must contain '{{text}}'")
    policy = cfg.get("on_missing_instruction", "error")
    if policy not in MISSING_POLICIES:
        raise ConfigError(
            f"prompts.on_missing_instruction={policy!r} is unknown; use one of {MISSING_POLICIES}"
        )
    instructions = {str(k): str(v) for k, v in (cfg.get("instructions") or {}).items()}
    both_sides = frozenset(str(t) for t in (cfg.get("both_sides") or []))
    if known_tasks is not None:
        unknown = sorted(t for t in set(instructions) | both_sides if t not in known_tasks)
        if unknown:
            raise ConfigError(
                f"prompts={name}: unknown task name(s) {', '.join(unknown)} "
                "(not a task of any known benchmark)"
            )
    return Recipe(
        name=name,
        template=template,
        instructions=instructions,
        both_sides=both_sides,
        empty_text=cfg.get("empty_text"),
        wrapper=wrapper,
        on_missing_instruction=policy,
    )


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
