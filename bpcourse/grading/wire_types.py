"""The course objects that travel to a learner's process as inputs.

* ``SmoothFunction``: by name.
* ``minigraph.Node``: a whole graph, nodes numbered in topological order. A
  node that was sent travels back as a reference to its number, so a list of
  nodes returned by the learner's ``topological_order`` names the grader's
  own nodes. The gradients the learner's ``backward`` filled in are copied
  onto the grader's nodes after the call (only ``grad``: nothing else is
  taken back).
* ``ArrayFunction``, ``JvpFunction``, ``VjpFunction``, ``TanhLayer``: by name
  and arrays. Each is numbered like a node, and only its call counters come
  back after the call: they tell the grader how many evaluations or passes
  the learner's function ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpcourse.grading.wire import Decoder, Encoder, Opaque, WireError, mutable_state, wire_type
from bpcourse.graph import topological_order
from bpcourse.minigraph import Node
from bpcourse.testfunctions import (
    ARRAY_FUNCTIONS,
    ENGINE_MAPS,
    SMOOTH_FUNCTIONS,
    ArrayFunction,
    JvpFunction,
    SmoothFunction,
    TanhLayer,
    VjpFunction,
)


def _smooth_from(payload: Any, decoder: Decoder) -> SmoothFunction:
    name = str(payload)
    if name not in SMOOTH_FUNCTIONS:
        raise WireError(f"unknown test function {name!r}")
    return SmoothFunction(name)


wire_type("smooth_function", SmoothFunction, lambda f, encoder: f.name, _smooth_from)


def _float(x: Any) -> float:
    return float(x) if isinstance(x, int | float) else float("nan")


def _node_to(node: Node, encoder: Encoder) -> dict[str, Any]:
    if id(node) in encoder.memo:
        return {"ref": encoder.memo[id(node)]}
    records = []
    for member in topological_order(node):
        index, new = encoder.number(member)
        if not new:
            continue
        records.append(
            {
                "id": index,
                "value": _float(member.value),
                "grad": _float(member.grad),
                "parents": [encoder.memo[id(p)] for p in member.parents],
                "local": [_float(g) for g in member.local_grads],
                "op": str(member.op)[:40],
                "label": str(member.label)[:40],
            }
        )
    return {"graph": records, "at": encoder.memo[id(node)]}


def _node_from(payload: Any, decoder: Decoder) -> Any:
    if "ref" in payload:
        return decoder.objects.get(int(payload["ref"]), Opaque("Node that is not part of the graph"))
    for record in payload["graph"]:
        index = int(record["id"])
        if index in decoder.objects:
            continue  # a node the grader sent: it is referred to, never rebuilt
        parents = tuple(decoder.objects[int(p)] for p in record["parents"])
        local = tuple(_float(g) for g in record["local"])
        node = Node(_float(record["value"]), parents, local, str(record["op"]), str(record["label"]))
        node.grad = _float(record["grad"])
        decoder.objects[index] = node
    return decoder.objects[int(payload["at"])]


wire_type("node", Node, _node_to, _node_from)


def _write_grad(node: Node, grad: Any) -> None:
    node.grad = _float(grad)  # the only thing taken back from the learner's side


mutable_state(Node, lambda node: _float(node.grad), _write_grad)


# -- numpy random generators (for exercises that draw, such as weight initialisation) --------------
def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return {"int": str(value)}  # PCG64 states are 128-bit: beyond what a JSON number holds exactly
    raise WireError(f"cannot send a generator state holding {type(value).__name__}")


def _from_json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"int"}:
            return int(value["int"])
        return {k: _from_json_ready(v) for k, v in value.items()}
    return value


def _generator_from(payload: Any, decoder: Decoder) -> np.random.Generator:
    state = _from_json_ready(payload)
    if state.get("bit_generator") != "PCG64":
        raise WireError("only PCG64 generators are accepted")
    bit_generator = np.random.PCG64()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


wire_type(
    "generator",
    np.random.Generator,
    lambda rng, encoder: _json_ready(rng.bit_generator.state),
    _generator_from,
)


# -- counted test objects: array functions, forward/reverse-mode maps, layers (notebook 07) ----------
def _count(value: Any) -> int:
    """A call counter as a plain int (-1 for anything that is not a count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else -1


def _numbered(obj: Any, encoder: Encoder, fields: dict[str, Any]) -> dict[str, Any]:
    if id(obj) in encoder.memo:
        return {"ref": encoder.memo[id(obj)]}
    index, _ = encoder.number(obj)
    return {"id": index, **fields}


def _known(payload: Any, decoder: Decoder, what: str) -> Any:
    """The object a reference points to, or None when the payload describes a new one."""
    if not isinstance(payload, dict):
        raise WireError(f"malformed {what}")
    if "ref" in payload:
        return decoder.objects.get(int(payload["ref"]), Opaque(f"{what} that was not sent"))
    return None


def _array(payload: Any, key: str, decoder: Decoder) -> np.ndarray:
    value = decoder.decode(payload.get(key))
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise WireError(f"{key} must be a float array")
    return value


def _array_function_from(payload: Any, decoder: Decoder) -> Any:
    known = _known(payload, decoder, "array function")
    if known is not None:
        return known
    name = str(payload.get("name"))
    if name not in ARRAY_FUNCTIONS:
        raise WireError(f"unknown array function {name!r}")
    obj = ArrayFunction(name)
    decoder.objects[int(payload["id"])] = obj
    return obj


wire_type(
    "array_function",
    ArrayFunction,
    lambda f, encoder: _numbered(f, encoder, {"name": f.name}),
    _array_function_from,
)


def _engine_map_to(f: Any, encoder: Encoder) -> dict[str, Any]:
    return _numbered(f, encoder, {"name": f.name, "A": encoder.encode(f.A), "c": encoder.encode(f.c)})


def _engine_map_from(cls: type) -> Any:
    def decode(payload: Any, decoder: Decoder) -> Any:
        known = _known(payload, decoder, cls.__name__)
        if known is not None:
            return known
        name = str(payload.get("name"))
        if name not in ENGINE_MAPS:
            raise WireError(f"unknown map {name!r}")
        try:
            obj = cls(name, _array(payload, "A", decoder), _array(payload, "c", decoder))
        except ValueError as exc:
            raise WireError(str(exc)) from None
        decoder.objects[int(payload["id"])] = obj
        return obj

    return decode


wire_type("jvp_function", JvpFunction, _engine_map_to, _engine_map_from(JvpFunction))
wire_type("vjp_function", VjpFunction, _engine_map_to, _engine_map_from(VjpFunction))


def _layer_from(payload: Any, decoder: Decoder) -> Any:
    known = _known(payload, decoder, "layer")
    if known is not None:
        return known
    try:
        obj = TanhLayer(_array(payload, "W", decoder), _array(payload, "b", decoder))
    except ValueError as exc:
        raise WireError(str(exc)) from None
    decoder.objects[int(payload["id"])] = obj
    return obj


wire_type(
    "tanh_layer",
    TanhLayer,
    lambda layer, encoder: _numbered(
        layer, encoder, {"W": encoder.encode(layer.W), "b": encoder.encode(layer.b)}
    ),
    _layer_from,
)


def _read_calls(obj: Any) -> int:
    return _count(getattr(obj, "calls", None))


def _write_calls(obj: Any, value: Any) -> None:
    obj.calls = _count(value)  # the only thing taken back from the learner's side


for _cls in (ArrayFunction, JvpFunction, VjpFunction):
    mutable_state(_cls, _read_calls, _write_calls)


def _read_layer_calls(layer: Any) -> dict[str, int]:
    return {
        "forward": _count(getattr(layer, "forward_calls", None)),
        "backward": _count(getattr(layer, "backward_calls", None)),
    }


def _write_layer_calls(layer: Any, value: Any) -> None:
    value = value if isinstance(value, dict) else {}
    layer.forward_calls = _count(value.get("forward"))
    layer.backward_calls = _count(value.get("backward"))


mutable_state(TanhLayer, _read_layer_calls, _write_layer_calls)
