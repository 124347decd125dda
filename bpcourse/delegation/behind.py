"""What stands behind a stand-in: the object it replaces, kept out of a learner's reach.

Every stand-in the guard makes is remembered here with its ``Entry`` (the
real object, the guard that made it, the refused name); ``real_of`` sees
through a stand-in wherever the delegation code looks at a value.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpcourse.delegation.guard import Guard


class StandIn:
    """What the guard puts in place of a refused thing (or of a module that leads to one)."""

    __slots__ = ()


@dataclass(eq=False)
class Entry:
    real: Any
    guard: Guard
    name: str  # what is refused: the object's name, or the module's
    refused: bool = True  # for a module: refused itself (True), or only what leads on (False)


def _registry() -> tuple[Callable[[StandIn, Entry], None], Callable[[StandIn], Entry]]:
    # Kept in a closure, not as a module attribute: what stands behind a stand-in is not one
    # attribute away from a learner's code.
    entries: weakref.WeakKeyDictionary[StandIn, Entry] = weakref.WeakKeyDictionary()

    def remember(stand_in: StandIn, entry: Entry) -> None:
        entries[stand_in] = entry

    def entry_of(stand_in: StandIn) -> Entry:
        return entries[stand_in]

    return remember, entry_of


remember, entry_of = _registry()


def real_of(value: Any) -> Any:
    """The object behind a stand-in (``value`` itself when it is not one)."""
    if issubclass(type(value), StandIn):
        return entry_of(value).real
    return value
