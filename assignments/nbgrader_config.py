# nbgrader's course configuration (traitlets); run nbgrader from this directory.
from autograder.nbgrader_autograde import autograde_preprocessors, sanitize_preprocessors

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "neural-attention"
c.CourseDirectory.root = "."
# `nbgrader autograde` never runs a student's kernel: ConfinedGrading takes the place of Execute and scores every
# test cell with the confined standalone grader (autograder/nbgrader_autograde.py); the other preprocessors
# (LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata, ...) stay as nbgrader has them.
c.Autograde.autograde_preprocessors = autograde_preprocessors()
# Before nbgrader's sanitizing, RepairMetadata makes each cell's nbgrader metadata the assignment's again (a copied
# cell or re-flagged test cells would otherwise stop the run or zero the notebook), and says so in the feedback.
c.Autograde.sanitize_preprocessors = sanitize_preprocessors()
c.ConfinedGrading.device = ""  # "" = CUDA when present; or "cpu" / "cuda"
c.ConfinedGrading.timeout_factor = 1.0  # scales every check's time limit (60 s per check, 300 s for training)
# Execute is still what `nbgrader validate` uses to run a notebook: give the training cells room.
c.Execute.timeout = 900
c.Execute.kernel_name = "python3"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.enforce_metadata = True
