# nbgrader's course configuration (traitlets); run nbgrader from this directory.
c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "neural-attention"
c.CourseDirectory.root = "."
# Hidden checks train the classifier (about a minute on a CPU): give each cell room, and the notebook more.
c.Execute.timeout = 900
c.Execute.kernel_name = "python3"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.enforce_metadata = True
