"""nbgrader configuration of the bpcourse course directory.

One assignment per notebook: the assignment id is the notebook's stem
(``01_scalar_graphs``) and its source is ``source/<id>/<id>.ipynb``. The
student notebooks in ``../notebooks/`` are produced from ``../solutions/`` by
``python -m bpcourse.authoring generate``, which runs nbgrader with this file.
"""

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, OverwriteCells

from bpcourse.nbgrader_hooks import HideGradeResults, RestoreHiddenTests

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "bpcourse"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# Solutions: the body between the delimiters becomes the stub below.
c.ClearSolutions.begin_solution_delimeter = "### BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "### END SOLUTION"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.enforce_metadata = True

# Hidden tests: the ``grade(...)`` calls are removed from the student version and
# restored by ``nbgrader autograde``.
c.ClearHiddenTests.begin_test_delimeter = "### BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "### END HIDDEN TESTS"
c.ClearHiddenTests.enforce_metadata = True

# Student versions start without outputs; autograding restores every graded
# cell from the gradebook, even one a learner deleted.
c.ClearOutput.remove_metadata_fields = ["collapsed", "scrolled", "execution", "ExecuteTime"]
c.OverwriteCells.add_missing_cells = True
# nbgrader stores each check cell with its hidden tests, and warns "Attribute 'checksum'
# ... has changed!" for every check cell of every learner when it puts them back (nbgrader
# issue #1961). RestoreHiddenTests puts them back the same way, and warns only for a cell
# whose visible part the learner changed.
c.Autograde.sanitize_preprocessors = [
    RestoreHiddenTests if preprocessor is OverwriteCells else preprocessor
    for preprocessor in Autograde.class_traits()["sanitize_preprocessors"].default()
]

# Autograding runs each notebook top to bottom; no course notebook needs more
# than a few seconds per cell.
c.ExecutePreprocessor.timeout = 60
c.Execute.timeout = 60

# Feedback (``nbgrader generate_feedback``) is made from the autograded notebooks,
# in which the hidden tests are back in place: nbgrader's default feedback shows
# them to the learner. ClearHiddenTests removes them again (the cell's visible
# ``check(...)`` line, its output and the points stay), and HideGradeResults the
# ``Out[n]: 1.0`` the hidden ``grade(fn)`` displayed (nbgrader's partial credit).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, HideGradeResults, CSSHTMLHeaderPreprocessor]
