"""Two preprocessors that ``grader/nbgrader_config.py`` gives nbgrader.

* ``RestoreHiddenTests`` replaces nbgrader's ``OverwriteCells`` when autograding.
  nbgrader stores each graded cell's source and checksum *with* its hidden tests,
  and the learner's copy has them removed, so ``nbgrader autograde`` warns
  "Attribute 'checksum' for cell check_... has changed!" for every check cell of
  every learner, untouched ones included (nbgrader issue #1961), while it
  restores the hidden tests. This subclass restores them just the same and
  keeps the warning for a cell whose visible part the learner did change.
* ``HideGradeResults`` drops the value a hidden ``grade(fn)`` call displays
  (``Out[n]: 1.0``) from the feedback pages. nbgrader needs that value while
  autograding: a test cell's displayed number is its partial credit (and a
  cell that displays nothing earns full marks), so the hidden test cannot end
  in ``;``. The feedback already shows each cell's points.
"""

from __future__ import annotations

import copy
from typing import Any

from nbgrader import utils
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells


class RestoreHiddenTests(OverwriteCells):
    """OverwriteCells without its checksum warning for a locked cell handed back as it was released."""

    _as_released: str | None = None  # the grade_id of the cell being restored, when it is as released

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
        self._as_released = None
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            try:
                stored = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                stored = None
            if stored is not None and stored.locked:
                # the stored source less its hidden tests, as nbgrader's ClearHiddenTests (with the
                # course's delimiters) made the learner's copy
                released = copy.deepcopy(cell)
                released.source = stored.source
                ClearHiddenTests(config=self.config)._remove_hidden_test_region(released)
                if cell.source == released.source:
                    self._as_released = grade_id
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name: str, attr: str, old: Any, new: Any) -> None:
        if attr == "checksum" and name == self._as_released:
            self.log.debug("Cell %s is as released: its hidden tests are put back", name)
            return
        super().report_change(name, attr, old, new)


class HideGradeResults(NbGraderPreprocessor):
    """Removes the displayed result (execute_result) of each graded test cell, for the feedback."""

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            cell.outputs = [output for output in cell.outputs if output.output_type != "execute_result"]
        return cell, resources
