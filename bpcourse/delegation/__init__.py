"""No marks for calling the course's engine: what a graded function may not use, and a guard.

Each exercise names the parts of ``bpcourse`` that would hand a learner its
answer (``Exercise.refuses``: dotted names of modules, which cover everything
in them, or of single objects). Two checks keep a graded function from using
them, and a refusal reads as one line, ``uses bpcourse.graph.topological_order:
write the order yourself``:

* ``refused_uses(source, refused)`` reads source code (``ast``): imports, and
  attribute chains from imported names, aliases and re-exports resolved
  (``from bpcourse import softmax`` is ``bpcourse.tensor.softmax``).
  ``refused_by(function, refused)`` applies it to a live function and to the
  learner's helpers it calls, reads their bytecode (which needs no source),
  and looks at what their globals, defaults and closures are bound to, by
  identity.
* ``refusing(namespace, refused)`` is the run-time guard around a call. While
  it is on, the learner's namespace (a notebook's globals, the ``__globals__``
  of every function defined there) and the import system do not offer the
  refused things: names bound to them, and ``sys.modules`` entries, are
  replaced by stand-ins that raise ``DelegationRefused`` once the refused thing
  is called or reached, and importing a refused module raises it too. The
  engine's own functions are never patched, so inputs made of engine pieces
  (``minigraph.Node``, ``testfunctions.JvpFunction``, ...) keep working, and
  a module stand-in answers the engine's own code as the real module would.
  Everything is put back on the way out.

``call_refusing`` does both around one call, for a process that runs the
learner's code (the class grader's worker).

The package imports only the standard library: it runs inside the grading
sandbox, where the exercise registry and the grader cannot be imported. Its
modules, each with one job:

* ``message``: ``DelegationRefused`` and the line a learner reads;
* ``loaded``: the modules loaded now, and the dotted names leading into them;
* ``refusals``: what is refused, resolved against those modules (``Refusals``);
* ``source``: reading source (``refused_uses``);
* ``functions``: reading a live function (``refused_by``, ``namespace_of``);
* ``behind``: what stands behind each stand-in, out of a learner's reach;
* ``stand_ins``: the stand-ins for refused things and for the modules that lead to them;
* ``guard``: ``refusing`` and ``call_refusing``.

It raises the bar; it is not a sandbox. Python can always reach an object by
introspection (``__globals__`` of an input's methods, ``__closure__``,
``gc``, frames), a copy of the engine's source, or a reference hidden deeper
than one level inside a container; those are left to the course's rules on
plagiarism.
"""

from bpcourse.delegation.functions import namespace_of, refused_by
from bpcourse.delegation.guard import call_refusing, refusing
from bpcourse.delegation.message import DelegationRefused, refusal_line, refused_name
from bpcourse.delegation.source import refused_uses

__all__ = [
    "DelegationRefused",
    "call_refusing",
    "namespace_of",
    "refusal_line",
    "refused_by",
    "refused_name",
    "refused_uses",
    "refusing",
]
