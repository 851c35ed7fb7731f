"""Exercises and an autograder for neural attention in PyTorch.

Library entry points: ``autograder.grading.grade_path`` (standalone, submission in a child process) and
``autograder.notebook_cell.grade_part`` (nbgrader test cells). The command line is ``python -m autograder``.
"""

__version__ = "0.1.0"
