"""The one base of ALFIA's typed configs, in the manner of peft's ``PeftConfigMixin``: a dataclass that
round-trips a JSON object (``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json``).

    @dataclass
    class MyConfig(JsonConfig):
        epochs: int = 8
        def validate(self) -> None:           # ranges and choices; the types are checked already
            require(self.epochs >= 1, "epochs must be >= 1")

On construction (``__post_init__``) every field is checked against its annotation (``typing.get_type_hints``): a
number field takes no text, an integer field takes an integral float (``2.0`` from JSON) as that integer, a
``Literal`` field only one of its choices, a nested config field takes its JSON object; then the subclass's
``validate`` runs. ``from_dict`` refuses an unknown key by name and lets ``upgrade`` map the keys of configs saved
by older versions. Every failure is an ``AlfiaError`` naming the config (or the file it came from) and the field.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

from alfia.atomic import read_json_object, write_json_atomic
from alfia.errors import AlfiaError


def require(ok: bool, message: str) -> None:
    """Raise ``AlfiaError(message)`` unless ``ok`` (the one-line form of a ``validate`` check)."""
    if not ok:
        raise AlfiaError(message)


_KIND = {int: "an integer", float: "a number", bool: "true or false", str: "a text", dict: "an object",
         list: "a list", tuple: "a list"}


def _members(hint: Any) -> tuple[Any, ...]:
    """The types a hint admits: ``int | None`` -> (int, NoneType); ``tuple[str, ...]`` -> (tuple[str, ...],)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _describe(hint: Any) -> str:
    names = []
    for member in _members(hint):
        base = typing.get_origin(member) or member
        if member is type(None):
            continue
        if base is typing.Literal:
            names.append("one of " + ", ".join(map(repr, typing.get_args(member))))
        elif isinstance(base, type) and issubclass(base, JsonConfig):
            names.append("an object")
        else:
            names.append(_KIND.get(base, getattr(base, "__name__", str(base))))
    text = " or ".join(dict.fromkeys(names))
    return text + (" (or None)" if type(None) in _members(hint) else "")


def _coerce(value: Any, hint: Any, source: str) -> tuple[bool, Any]:
    """(whether ``value`` fits ``hint``, the value to keep: an integral float as int, a list as tuple, a path as
    its text, an object as its nested config)."""
    for member in _members(hint):
        base = typing.get_origin(member) or member
        if member is Any:
            return True, value
        if base is typing.Literal:  # a choice: Literal["full", "fast"]
            for choice in typing.get_args(member):  # kept as the plain choice (a StrEnum member -> its text)
                if value == choice and isinstance(value, bool) == isinstance(choice, bool):
                    return True, choice
        elif member is type(None):
            if value is None:
                return True, value
        elif base is bool:
            if isinstance(value, bool):
                return True, value
        elif base is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True, value
            if isinstance(value, float) and value.is_integer():
                return True, int(value)
        elif base is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True, value
        elif base in (tuple, list):
            if isinstance(value, (tuple, list)):
                return True, base(value)
        elif base is str and isinstance(value, os.PathLike):  # a folder or file given as a Path
            return True, os.fspath(value)
        elif isinstance(base, type) and issubclass(base, JsonConfig):
            if isinstance(value, base):
                return True, value
            if isinstance(value, dict):
                return True, base.from_dict(value, source=source)
        elif isinstance(base, type) and isinstance(value, base):
            return True, value
    return False, value


class JsonConfig:
    """Base of a ``@dataclass`` config: typed fields, checked on construction, saved as one JSON object."""

    # What a message calls the config when it came from no file (default: the class name).
    config_name: ClassVar[str | None] = None
    # What from_json says of a file that is not there / not a JSON object.
    file_missing: ClassVar[str] = "file is missing"
    file_invalid: ClassVar[str] = "not valid JSON"

    def __post_init__(self) -> None:
        self.check_types()
        self.validate()

    def validate(self) -> None:
        """Ranges and choices of the fields (a subclass's checks; the types are checked before it runs)."""

    @classmethod
    def _label(cls) -> str:
        return cls.config_name or cls.__name__

    def check_types(self) -> None:
        """Every field against its annotation; fits are normalised in place (2.0 -> 2, [..] -> (..), {..} -> config)."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            fits, kept = _coerce(value, hints[f.name], f"{self._label()}: {f.name}")
            if not fits:
                raise AlfiaError(f"{self._label()}: {f.name} must be {_describe(hints[f.name])}, got {value!r}")
            if kept is not value:  # (object.__setattr__: a frozen dataclass is normalised too)
                object.__setattr__(self, f.name, kept)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (a nested config as its object, a tuple as a list)."""
        def plain(value: Any) -> Any:
            if isinstance(value, JsonConfig):
                return value.to_dict()
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The keys of a config saved by an older version, mapped to this one (default: as they are)."""
        return data

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None):
        """The config of a JSON object; an unknown key is refused by name. ``source`` (a file, or the section
        of one) starts every message."""
        source = source or cls._label()
        if not isinstance(data, dict):
            raise AlfiaError(f"{source}: expected a JSON object, got {type(data).__name__}")
        try:
            data = cls.upgrade(dict(data))
            names = [f.name for f in dataclasses.fields(cls)]
            unknown = sorted(set(data) - set(names))
            if unknown:
                raise AlfiaError(f"{source}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}")
            hints = typing.get_type_hints(cls)
            for name, value in data.items():  # a nested config names its own section in its messages
                base = typing.get_origin(hints[name]) or hints[name]
                if isinstance(base, type) and issubclass(base, JsonConfig) and isinstance(value, dict):
                    data[name] = base.from_dict(value, source=f"{source}: {name}")
            return cls(**data)
        except AlfiaError as e:  # "TrainConfig: lr must be > 0" -> "config.json: train: lr must be > 0"
            message = str(e).removeprefix(f"{cls._label()}: ")
            raise AlfiaError(message if message.startswith(source) else f"{source}: {message}") from None

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the config to ``path`` (atomically) as one JSON object."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def from_json(cls, path: str | os.PathLike):
        """The config saved at ``path``; a missing or damaged file is named."""
        data = read_json_object(path, missing=cls.file_missing, invalid=cls.file_invalid)
        return cls.from_dict(data, source=str(path))
