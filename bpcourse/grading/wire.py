"""What crosses between the grader and a learner's process, and how.

Messages are JSON. Arrays travel as raw bytes with their dtype and shape, and
only numeric dtypes are accepted, so decoding what a learner's process sends
can never run code (no pickle anywhere). Anything else the learner returns is
described by its type name only. Objects of the course that must travel as
inputs (a test function, a small graph) register a tag with ``wire_type``.

Framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import base64
import json
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_MESSAGE = 256 * 1024 * 1024  # bytes; a larger reply is refused, not read
MAX_ARRAY_ENTRIES = 20_000_000
MAX_DEPTH = 20
MAX_ITEMS = 100_000
_NUMERIC_KINDS = "biufc"


class WireError(Exception):
    """A message was malformed, too large, or the other side went away."""


class Opaque:
    """Stands for a value the learner returned that cannot be sent across (described by type)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


# tag -> (class, to_payload, from_payload)
_WIRE_TYPES: dict[str, tuple[type, Callable[[Any, Encoder], Any], Callable[[Any, Decoder], Any]]] = {}


def wire_type(
    tag: str,
    cls: type,
    to_payload: Callable[[Any, Encoder], Any],
    from_payload: Callable[[Any, Decoder], Any],
) -> None:
    """Let objects of ``cls`` travel, tagged ``tag``."""
    _WIRE_TYPES[tag] = (cls, to_payload, from_payload)


# cls -> (read the state a learner's function may change, write it back on the grader's side)
_MUTABLE_STATE: dict[type, tuple[Callable[[Any], Any], Callable[[Any, Any], None]]] = {}


def mutable_state(cls: type, read: Callable[[Any], Any], write_back: Callable[[Any, Any], None]) -> None:
    """Objects of ``cls`` that a learner's function fills in (``backward`` fills ``.grad``).

    After a call the worker reads that state from every object it received;
    the grader writes it back onto the objects it sent, and takes nothing else.
    """
    _MUTABLE_STATE[cls] = (read, write_back)


def state_after_call(objects: dict[int, Any]) -> dict[str, Any]:
    """The mutable state of the received objects, by number (worker side)."""
    found = {}
    for index, obj in objects.items():
        entry = _MUTABLE_STATE.get(type(obj))
        if entry is not None:
            found[str(index)] = entry[0](obj)
    return found


def write_back(objects: dict[int, Any], state: Any) -> None:
    """Copy the worker's reported state onto the objects that were sent (grader side)."""
    if not isinstance(state, dict):
        raise WireError("state after the call must be an object")
    for key, value in state.items():
        obj = objects.get(int(key))
        entry = _MUTABLE_STATE.get(type(obj))
        if entry is None:
            raise WireError(f"no object numbered {key} can take state back")
        entry[1](obj, value)


class Encoder:
    """Turns Python values into JSON-ready structures.

    Tagged objects that may appear more than once (graph nodes) are numbered:
    ``memo`` maps id(object) to its number and ``objects`` the number back.
    """

    def __init__(self) -> None:
        self.memo: dict[int, int] = {}
        self.objects: dict[int, Any] = {}

    def number(self, obj: Any) -> tuple[int, bool]:
        """The object's number in this message, and whether it was new."""
        if id(obj) in self.memo:
            return self.memo[id(obj)], False
        index = len(self.objects)
        self.memo[id(obj)] = index
        self.objects[index] = obj
        return index, True

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            return {"__opaque__": "deeply nested value"}
        if value is None or isinstance(value, bool | str):
            return value if not isinstance(value, str) else value[:10_000]
        if isinstance(value, int):
            return value if abs(value) < 2**53 else float(value)
        if isinstance(value, float):
            return _float_out(value)
        if isinstance(value, np.generic) and value.dtype.kind in _NUMERIC_KINDS:
            return self.encode(np.asarray(value), depth)
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in _NUMERIC_KINDS:
                return {"__opaque__": f"numpy array of dtype {value.dtype}"}
            if value.size > MAX_ARRAY_ENTRIES:
                return {"__opaque__": f"numpy array with {value.size} entries (too large)"}
            data = np.ascontiguousarray(value)
            return {
                "__ndarray__": base64.b64encode(data.tobytes()).decode("ascii"),
                "dtype": data.dtype.str,
                "shape": list(data.shape),
            }
        if isinstance(value, tuple | list):
            if len(value) > MAX_ITEMS:
                return {"__opaque__": f"{type(value).__name__} of {len(value)} items (too long)"}
            items = [self.encode(v, depth + 1) for v in value]
            return {"__tuple__": items} if isinstance(value, tuple) else items
        if isinstance(value, dict):
            if len(value) > MAX_ITEMS or not all(isinstance(k, str) for k in value):
                return {"__opaque__": "dict (keys must be strings)"}
            return {"__dict__": {k: self.encode(v, depth + 1) for k, v in value.items()}}
        for tag, (cls, to_payload, _) in _WIRE_TYPES.items():
            if type(value) is cls:
                return {"__wire__": tag, "payload": to_payload(value, self)}
        return {"__opaque__": type(value).__name__}


def _float_out(x: float) -> Any:
    if x != x or x in (float("inf"), float("-inf")):
        return {"__float__": repr(float(x))}  # float(): numpy's repr would be 'np.float64(nan)'
    return x


class Decoder:
    """The inverse of ``Encoder``.

    ``objects`` maps numbers to objects already known on this side: objects
    decoded earlier in the message, or (on the grader's side) the very objects
    that were sent, so that a reply refers to them and updates them.
    """

    def __init__(self, objects: dict[int, Any] | None = None) -> None:
        self.objects: dict[int, Any] = dict(objects or {})

    def decode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH + 2:
            raise WireError("message nested too deeply")
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self.decode(v, depth + 1) for v in value]
        if not isinstance(value, dict):
            raise WireError(f"unexpected {type(value).__name__} in a message")
        if "__ndarray__" in value:
            dtype = np.dtype(value["dtype"])
            if dtype.kind not in _NUMERIC_KINDS:
                raise WireError(f"refused array dtype {dtype}")
            shape = tuple(int(n) for n in value["shape"])
            raw = base64.b64decode(value["__ndarray__"])
            count = int(np.prod(shape)) if shape else 1
            if count * dtype.itemsize != len(raw):
                raise WireError("array bytes do not match its shape")
            return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        if "__tuple__" in value:
            return tuple(self.decode(v, depth + 1) for v in value["__tuple__"])
        if "__dict__" in value:
            return {str(k): self.decode(v, depth + 1) for k, v in value["__dict__"].items()}
        if "__float__" in value:
            return float(value["__float__"])
        if "__opaque__" in value:
            return Opaque(str(value["__opaque__"]))
        if "__wire__" in value:
            tag = value["__wire__"]
            if tag not in _WIRE_TYPES:
                raise WireError(f"unknown wire type {tag!r}")
            return _WIRE_TYPES[tag][2](value["payload"], self)
        raise WireError("unrecognised object in a message")


def send(fd: int, message: dict[str, Any]) -> None:
    """Write one framed JSON message to a file descriptor."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    data = struct.pack(">I", len(body)) + body
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, count: int, deadline: float | None) -> bytes:
    chunks, remaining = [], count
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError("no answer within the time limit")
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise WireError("the other side closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, timeout: float | None = None) -> dict[str, Any]:
    """Read one framed JSON message; TimeoutError if it has not fully arrived in ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    (length,) = struct.unpack(">I", _read_exactly(fd, 4, deadline))
    if length > MAX_MESSAGE:
        raise WireError(f"message of {length} bytes refused")
    try:
        message = json.loads(_read_exactly(fd, length, deadline).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"malformed message: {exc}") from None
    if not isinstance(message, dict):
        raise WireError("a message must be a JSON object")
    return message
