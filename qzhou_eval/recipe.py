"""The prompting recipe: ``(task, side, text) -> exact model input``. Pure functions, no torch.

A recipe is data (``conf/prompts/*.yaml``). The rules reproduce the official QZhou evaluation
scripts:

- the instruction prefix (``instruction_template`` filled with the task's instruction) goes on a
  text when mteb encodes it as a query, and on every text of the tasks listed in
  ``instruction_on_all_texts`` (their documents, and the texts of task types mteb encodes without
  a prompt type: STS, classification, clustering, ...); never otherwise;
- a text that is exactly ``""`` becomes ``empty_text`` (``"Null"``) before the prefix is added;
- an optional ``input_template`` (QZhou-Embedding-Zh's PromptEOL template) then wraps prefix + text.

A recipe may instead state a sentence-transformers model's prompts (``model_prompts``,
``default_prompt``): the prefix is then the prompt mteb's run of such a model puts before the text
(mteb's ``SentenceTransformerEncoderWrapper`` over sentence-transformers 6): the first of the keys
``<task>-<side>``, ``<task>``, ``<task type>-<side>``, ``<task type>``, ``<side>`` that the map
has, where ``<side>`` counts only for texts mteb encodes as queries or documents; a query or
document matched by none gets no prompt (sentence-transformers' own empty ``query`` and
``document`` prompts), any other text ``default_prompt`` (its ``default_prompt_name``).

The keys were named ``template``, ``both_sides`` and ``wrapper`` before; a recipe that uses those
still works for one release, with a warning (:data:`RENAMED_KEYS`).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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
# Keys a recipe may leave out (recipes written before them): absent = no model prompts, as
# conf/prompts/none.yaml states them.
OPTIONAL_KEYS = ("model_prompts", "default_prompt")
PROMPT_SIDES = ("query", "document")  # mteb's prompt types, the sides a model prompt may name


def no_task_type(task: str) -> str | None:
    """No task's type is known (a recipe built without a catalog of tasks)."""
    return None


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
    # A sentence-transformers model's prompts, by mteb's keys (see the module's docstring).
    model_prompts: Mapping[str, str] = field(default_factory=dict)
    default_prompt: str | None = None
    # Task name -> mteb's task type (None: unknown), for the prompts keyed by a task type.
    task_type: Callable[[str], str | None] = field(default=no_task_type, compare=False)

    @property
    def uses_instructions(self) -> bool:
        return bool(self.instructions)

    @property
    def uses_model_prompts(self) -> bool:
        return bool(self.model_prompts) or self.default_prompt is not None

    def prefix(self, task: str, side: Side) -> str:
        """The instruction prefix (or the model prompt) for one task and side ("" when none)."""
        if self.uses_model_prompts:
            return self.model_prompt(task, side)
        if side != "query" and task not in self.instruction_on_all_texts:
            return ""
        instruction = self.instructions.get(task)
        if not instruction:
            return ""
        return self.instruction_template.format(instruction=instruction)

    def model_prompt(self, task: str, side: Side) -> str:
        """The prompt mteb's run of a sentence-transformers model with these prompts puts before
        ``task``'s texts on ``side`` (mteb's ``get_prompt_name`` order)."""
        prompts, kind = self.model_prompts, self.task_type(task)
        sided = side in PROMPT_SIDES
        keys = [f"{task}-{side}" if sided else None, task]
        if kind:
            keys += [f"{kind}-{side}" if sided else None, kind]
        keys.append(side if sided else None)
        for key in keys:
            if key is not None and key in prompts:
                return prompts[key]
        # a query or document: sentence-transformers' own "query"/"document" prompt ("" unless
        # set) matched above; the default prompt is for what mteb encodes without a side
        return "" if sided else self.default_prompt or ""

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

    def warn_unreached(self, sides: Mapping[str, Iterable[Side]]) -> None:
        """A warning for each instruction that never reaches the model: ``sides``, the sides
        mteb encodes each task's texts with, has no query side, and the instruction goes on
        queries only."""
        for task, task_sides in sides.items():
            if task not in self.instructions or task in self.instruction_on_all_texts:
                continue
            if "query" not in task_sides:
                warn_once(
                    f"warning: prompts.instructions.{task} of {self.name} never reaches the "
                    "model: mteb encodes its texts without a query side, and an instruction "
                    "goes on queries only; list the task in prompts.instruction_on_all_texts to "
                    "put it on every text"
                )

    def named_tasks(self) -> frozenset[str]:
        """Tasks the recipe treats specially (an instruction, or the instruction on every text);
        every other task gets the same treatment, but for prompts keyed by a task type
        (:meth:`prompt_rules`)."""
        return frozenset(self.instructions) | self.instruction_on_all_texts

    def prompt_rules(self) -> dict[str, Any]:
        """The model prompts as stated ({} without any): what treats tasks by their type."""
        if not self.uses_model_prompts:
            return {}
        return {
            "model_prompts": dict(sorted(self.model_prompts.items())),
            "default_prompt": self.default_prompt,
        }

    def legacy_fields(self) -> dict[str, Any]:
        """What qzhou-eval 0.1 hashed into its folder records (read only to migrate those)."""
        return {
            "template": self.instruction_template,
            "instructions": dict(sorted(self.instructions.items())),
            "both_sides": sorted(self.instruction_on_all_texts),
            "empty_text": self.empty_text,
            "wrapper": self.input_template,
        }


class TaskCatalog(Container[str], Protocol):
    """Every task name a recipe may mention, and each one's mteb task type."""

    task_types: frozenset[str]

    def type_of(self, task: str) -> str | None: ...


def recipe_from_config(cfg: Mapping[str, Any], known_tasks: Container[str] | None = None) -> Recipe:
    """Build and validate a Recipe from the ``prompts`` config group.

    Every key is read from the config (``conf/prompts/none.yaml`` states them all; a recipe file
    can start from it with ``defaults: [none, _self_]``). ``known_tasks``: every task name the
    recipe may legitimately mention (all tasks of every benchmark the harness knows); where it is
    a :class:`TaskCatalog` the model prompts' task types are read from it too. A recipe naming
    anything else is a typo and fails.
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
    input_template = _text_or_null(name, "input_template", values["input_template"])
    if input_template is not None and "{text}" not in input_template:
        raise ConfigError(f"prompts.input_template of {name} must contain '{{text}}'")
    policy = values["on_missing_instruction"]
    if policy not in MISSING_POLICIES:
        raise ConfigError(
            f"prompts.on_missing_instruction={shown(policy)} is unknown; "
            f"use one of {list(MISSING_POLICIES)}"
        )
    instructions = _instructions(name, values["instructions"])
    on_all_texts = _task_names(name, "instruction_on_all_texts", values["instruction_on_all_texts"])
    if known_tasks is not None:
        unknown = sorted(t for t in set(instructions) | on_all_texts if t not in known_tasks)
        if unknown:
            raise ConfigError(
                f"prompts={name}: unknown task name(s) {', '.join(unknown)} "
                "(not a task of any known benchmark)"
            )
    model_prompts, default_prompt = _model_prompts(name, values, known_tasks)
    if (model_prompts or default_prompt is not None) and (instructions or on_all_texts):
        raise ConfigError(
            f"prompts={name} sets model prompts (model_prompts, default_prompt) and "
            "instructions (instructions, instruction_on_all_texts): a recipe uses one of them"
        )
    type_of = getattr(known_tasks, "type_of", None)
    return Recipe(
        name=name,
        instruction_template=template,
        instructions=instructions,
        instruction_on_all_texts=on_all_texts,
        empty_text=_text_or_null(name, "empty_text", values["empty_text"]),
        input_template=input_template,
        on_missing_instruction=str(policy),
        model_prompts=model_prompts,
        default_prompt=default_prompt,
        **({"task_type": type_of} if type_of is not None else {}),
    )


def _model_prompts(
    name: str, values: Mapping[str, Any], known_tasks: Container[str] | None
) -> tuple[dict[str, str], str | None]:
    """``model_prompts`` (mteb's key -> prompt) and ``default_prompt``, checked: a key mteb would
    not read (it drops such keys with a warning) is a typo here."""
    raw, default = values["model_prompts"], values["default_prompt"]
    if raw is None or isinstance(raw, str) or not hasattr(raw, "items"):
        raise ConfigError(
            f"prompts.model_prompts of {name} is {shown(raw)}: give a map of prompt key to "
            "prompt ({} for none)"
        )
    prompts: dict[str, str] = {}
    for key, text in raw.items():
        if not isinstance(text, str):
            raise ConfigError(
                f"prompts.model_prompts.{key} of {name} is {shown(text)}: give a text (quote it)"
            )
        prompts[str(key)] = text
    if default is not None and not isinstance(default, str):
        raise ConfigError(
            f"prompts.default_prompt of {name} is {shown(default)}: give a text, or null for none"
        )
    types = getattr(known_tasks, "task_types", None)
    if known_tasks is not None:
        unknown = [k for k in prompts if not _is_prompt_key(k, known_tasks, types)]
        if unknown:
            cased = {t.lower(): t for t in (*PROMPT_SIDES, *(types or ()))}
            meant = [cased[k.lower()] for k in unknown if k.lower() in cased]
            hint = f" (did you mean {', '.join(meant)}?)" if meant else ""
            raise ConfigError(
                f"prompts.model_prompts of {name}: {', '.join(map(repr, unknown))} is not a key "
                f"mteb reads{hint}: a side (query, document: mteb reads no passage), a task type "
                "or task name, or one of those and -query or -document (e.g. Retrieval-query)"
            )
    return prompts, default


def _is_prompt_key(key: str, known_tasks: Container[str], types: Container[str] | None) -> bool:
    """mteb's rule for a prompt key (``AbsEncoder.validate_task_to_prompt_name``)."""
    if key in PROMPT_SIDES:
        return True
    stem, dash, side = key.rpartition("-")
    if dash and side in PROMPT_SIDES:
        key = stem
    return key in known_tasks or (types is not None and key in types)


def _text_or_null(name: str, key: str, value: Any) -> str | None:
    """A text setting, or null; anything else is refused (Hydra's 5 or [a] would be pasted into
    the model input as Python prints it)."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"prompts.{key} of {name} is {shown(value)}: give a text (quote it), or null for none"
        )
    return value


def _task_names(name: str, key: str, value: Any) -> frozenset[str]:
    """A list of task names (null: none); a lone name is refused, not read letter by letter."""
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            f"prompts.{key} of {name} is {shown(value)}: give a list of task names, e.g. "
            f"'prompts.{key}=[{value if isinstance(value, str) else 'STS12'}]' ([] for none)"
        )
    if not all(isinstance(t, str) for t in value):
        bad = next(t for t in value if not isinstance(t, str))
        raise ConfigError(f"prompts.{key} of {name} names {shown(bad)}: give task names")
    return frozenset(value)


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


# What conf/prompts/none.yaml states for the renamed keys: a recipe started from it (defaults:
# [none, _self_]) with an old name inherits the new name with this value, which says nothing.
_NONE_VALUES: dict[str, Any] = {
    "instruction_template": "{instruction}",
    "instruction_on_all_texts": [],
    "input_template": None,
}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


def _current_keys(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Every recipe key by its current name; a deprecated name is read (with a warning) for one
    release, and an error when its new name is set too (to another value than none.yaml's)."""
    name = cfg.get("name", "?")
    values: dict[str, Any] = {}
    for old, new in RENAMED_KEYS.items():
        if old not in cfg:
            continue
        if new in cfg and _plain(cfg[new]) != _NONE_VALUES[new]:
            raise ConfigError(
                f"prompts={name}: set {new} or the deprecated {old}, not both ({old} is the old "
                f"name of {new}: rename it, or drop the inherited {new} with ~prompts.{new})"
            )
        warn_once(f"warning: prompts.{old} is deprecated; use prompts.{new} (same meaning)")
        values[new] = cfg[old]
    for key in OPTIONAL_KEYS:
        values.setdefault(key, cfg.get(key, {} if key == "model_prompts" else None))
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
