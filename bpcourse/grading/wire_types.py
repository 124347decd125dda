"""The course objects that travel to a learner's process as inputs.

* ``SmoothFunction``: by name.
* ``minigraph.Node``: a whole graph, nodes numbered in topological order. A
  node that was sent travels back as a reference to its number, so a list of
  nodes returned by the learner's ``topological_order`` names the grader's
  own nodes. The gradients the learner's ``backward`` filled in are copied
  onto the grader's nodes after the call (only ``grad``: nothing else is
  taken back).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpcourse.grading.wire import Decoder, Encoder, Opaque, WireError, mutable_state, wire_type
from bpcourse.graph import topological_order
from bpcourse.minigraph import Node
from bpcourse.testfunctions import SMOOTH_FUNCTIONS, SmoothFunction


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
