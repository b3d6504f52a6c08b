"""ACTION_SPACE: the only moves a loop may make, as data.

Each `ActionDefinition` names one setting of the task's config (a dotted path such as
`train.learning_rate`), says what it does, and lists the values allowed, read from the config
field's own bounds where it has them. A proposal, from a model or a heuristic, is a `Move`;
`validate` normalises its name, rejects a value outside the set and suggests the nearest valid
name; only `execute` turns a valid move into a NEW config (configs are frozen). The registry
renders itself into the proposer's prompt, so a model sees exactly what it may choose from.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Category = Literal["data", "training", "model", "evaluation"]


class ActionDefinition(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    category: Category
    field: str  # dotted path into the task's config
    values: tuple[Any, ...]


class Move(BaseModel):
    """One proposed change: set `action`'s setting to `value`, for the reason given."""

    model_config = ConfigDict(extra="ignore")

    action: str = Field(description="The name of one action, exactly as listed.")
    value: Any = Field(description="One of that action's allowed values.")
    why: str = Field(default="", max_length=400, description="One sentence: what in the last result this move should fix.")


class Rejected(BaseModel):
    """Why a proposal cannot be executed, and the nearest valid name when it looks misspelt."""

    reason: str
    suggestion: str | None = None


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "_", name.strip().lower())


class ActionSpace:
    def __init__(self, actions: Iterable[ActionDefinition]):
        self.actions = {_key(a.name): a for a in actions}

    def __iter__(self):
        return iter(self.actions.values())

    def __len__(self) -> int:
        return len(self.actions)

    def render(self) -> str:
        """The registry as the proposer's prompt sees it."""
        lines = ["You can ONLY choose one of these actions, with one of its allowed values:"]
        for a in self.actions.values():
            lines.append(f"- {a.name} ({a.category}): {a.description} Allowed values: {', '.join(map(_show, a.values))}.")
        return "\n".join(lines)

    def validate(self, move: Move) -> Move | Rejected:
        """The move with its canonical name and typed value, or why it is not a valid move."""
        action = self.actions.get(_key(move.action))
        if action is None:
            near = difflib.get_close_matches(_key(move.action), list(self.actions), n=1, cutoff=0.6)
            suggestion = self.actions[near[0]].name if near else None
            return Rejected(reason=f"no action named {move.action!r}", suggestion=suggestion)
        value = _coerce(move.value, action.values)
        if value is _INVALID:
            return Rejected(reason=f"{action.name} takes one of {', '.join(map(_show, action.values))}, not {move.value!r}")
        return Move(action=action.name, value=value, why=move.why)

    def current(self, config: BaseModel, action: str) -> Any:
        return _get(config, self.actions[_key(action)].field)

    def execute(self, config: BaseModel, move: Move) -> BaseModel:
        """A new config with the move applied (the move must be valid: `validate` first)."""
        valid = self.validate(move)
        if isinstance(valid, Rejected):
            raise ValueError(valid.reason)
        return _set(config, self.actions[_key(valid.action)].field.split("."), valid.value)


_INVALID = object()


def _coerce(value: Any, allowed: Sequence[Any]) -> Any:
    """`value` as the allowed value it equals ("1e-3" == 0.001, "true" == True), else _INVALID."""
    for option in allowed:
        if value == option and type(value) is type(option):
            return option
        try:
            if isinstance(option, bool):
                if str(value).strip().lower() in (("true", "yes", "on", "1") if option else ("false", "no", "off", "0")):
                    return option
            elif (
                isinstance(option, int | float) and not isinstance(value, bool) and abs(float(value) - option) <= 1e-9 * max(1, abs(option))
            ):
                return option
            elif isinstance(option, str) and str(value).strip().lower() == option.lower():
                return option
        except (TypeError, ValueError):
            continue
    return _INVALID


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)


def _get(config: BaseModel, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _set(config: BaseModel, path: list[str], value: Any) -> BaseModel:
    head, rest = path[0], path[1:]
    new = value if not rest else _set(getattr(config, head), rest, value)
    try:
        return type(config).model_validate({**config.model_dump(), head: new if not isinstance(new, BaseModel) else new.model_dump()})
    except ValidationError as exc:
        raise ValueError(f"{'.'.join(path)} = {value!r} is not a valid setting: {exc.errors()[0]['msg']}") from None


def allowed_values(model: type[BaseModel], field: str, ladder: Sequence[Any] = ()) -> tuple[Any, ...]:
    """The values a config field may take: a bool's two, a Literal's options, else `ladder` within the field's bounds."""
    info = model.model_fields[field]
    annotation = info.annotation
    if annotation is bool:
        return (True, False)
    if get_origin(annotation) is Literal:
        return tuple(get_args(annotation))
    bounds = info.metadata
    return tuple(v for v in ladder if all(_within(v, b) for b in bounds))


def _within(value: Any, bound: Any) -> bool:
    if isinstance(bound, Gt):
        return value > bound.gt
    if isinstance(bound, Ge):
        return value >= bound.ge
    if isinstance(bound, Lt):
        return value < bound.lt
    if isinstance(bound, Le):
        return value <= bound.le
    return True
