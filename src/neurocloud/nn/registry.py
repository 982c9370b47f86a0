"""Name -> object registries that also validate names and list the valid choices."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """A mapping from names to objects whose lookup errors list every valid name.

    >>> r = Registry("colour")
    >>> _ = r.register("red", 1)
    >>> r.get("red")
    1
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, item: T) -> T:
        self._items[name] = item
        return item

    def alias(self, alias: str, name: str) -> None:
        self._aliases[alias] = name

    def names(self) -> list[str]:
        return sorted(self._items)

    def canonical(self, name: str, argument: str | None = None) -> str:
        """Return the registered name for ``name`` (resolving aliases), or raise."""
        argument = argument or self.kind
        if not isinstance(name, str):
            raise TypeError(
                f"Expected {argument} to be a name (str); received {name!r} "
                f"of type {type(name).__name__}. Valid names: {', '.join(self.names())}."
            )
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key not in self._items:
            raise ValueError(
                f"Unknown {self.kind} {name!r} for {argument}. "
                f"Expected one of: {', '.join(self.names())}."
            )
        return key

    def get(self, name: str, argument: str | None = None) -> T:
        return self._items[self.canonical(name, argument)]
