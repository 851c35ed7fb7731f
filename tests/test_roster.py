"""Does a class source name each student and their file, in every layout tutors have?

A folder of ``<student>.py`` files, nbgrader's ``submitted/`` tree, and zips as Moodle and Canvas export them.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import pytest

from autograder.roster import ClassSourceError, read_class


@dataclass(frozen=True)
class FakeExercise:
    notebook: str = "assignments/source/attn/attn.ipynb"


EXERCISE = FakeExercise()


def students(source) -> dict[str, tuple[str, bytes]]:
    found = read_class(source, EXERCISE)
    return {f.student: (f.filename, f.content) for f in found.files}


def test_does_a_folder_name_each_student_by_their_file(tmp_path):
    (tmp_path / "ada.py").write_text("a = 1\n")
    (tmp_path / "grace.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / ".hidden.py").write_text("x")
    assert students(tmp_path) == {"ada": ("ada.py", b"a = 1\n"), "grace": ("grace.ipynb", b"{}")}


@pytest.mark.parametrize("root", ["course", "course/submitted"])
def test_does_an_nbgrader_tree_give_each_student_their_assignments_notebook(tmp_path, root):
    for student in ("ada", "grace"):
        folder = tmp_path / "course" / "submitted" / student / "attn"
        folder.mkdir(parents=True)
        (folder / "attn.ipynb").write_text(student)
    (tmp_path / "course" / "submitted" / "grace" / "other").mkdir()  # another assignment: not this one
    (tmp_path / "course" / "submitted" / "grace" / "other" / "other.ipynb").write_text("other")
    (tmp_path / "course" / "submitted" / "ivan" / "other").mkdir(parents=True)  # only another assignment
    (tmp_path / "course" / "submitted" / "ivan" / "other" / "other.ipynb").write_text("other")
    assert students(tmp_path / root) == {"ada": ("attn.ipynb", b"ada"), "grace": ("attn.ipynb", b"grace")}
    assert read_class(tmp_path / root, EXERCISE).layout == "nbgrader"


def zipped(path, members: dict[str, bytes], times: dict[str, tuple] | None = None):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(times or {}).get(name, (2026, 12, 1, 12, 0, 0)))
            z.writestr(info, data)
    return path


def test_does_a_moodle_zip_name_each_student_by_their_folder(tmp_path):
    source = zipped(tmp_path / "moodle.zip", {
        "Ada Lovelace_101_assignsubmission_file_/attn.py": b"ada",
        "Grace Hopper_102_assignsubmission_file_/attn.ipynb": b"grace",
        "Grace Hopper_102_assignsubmission_file_/readme.txt": b"not graded",
    })
    assert students(source) == {"Ada Lovelace_101": ("attn.py", b"ada"), "Grace Hopper_102": ("attn.ipynb", b"grace")}
    assert read_class(source, EXERCISE).layout == "moodle zip"


def test_does_a_canvas_zip_grade_each_students_newest_submission(tmp_path):
    source = zipped(tmp_path / "canvas.zip", {
        "lovelaceada_101_5001_attn.py": b"first",
        "lovelaceada_101_5007_attn-1.py": b"resubmitted",
        "hoppergrace_LATE_102_5003_attn.py": b"late",
    })
    found = read_class(source, EXERCISE)
    assert {f.student: f.content for f in found.files} == {"lovelaceada_101": b"resubmitted",
                                                           "hoppergrace_102": b"late"}
    assert any("lovelaceada_101 sent 2 files" in n and "attn-1.py is graded" in n for n in found.notes)


def test_do_a_folder_zip_and_an_nbgrader_zip_read_like_their_folders(tmp_path):
    flat = zipped(tmp_path / "flat.zip", {"class/ada.py": b"ada", "class/grace.py": b"grace"})
    assert students(flat) == {"ada": ("ada.py", b"ada"), "grace": ("grace.py", b"grace")}
    tree = zipped(tmp_path / "tree.zip", {"submitted/ada/attn/attn.ipynb": b"ada",
                                          "submitted/ada/other/other.ipynb": b"other"})
    found = read_class(tree, EXERCISE)
    assert {f.student: f.content for f in found.files} == {"ada": b"ada"}
    assert any("other.ipynb" in n and "left out" in n for n in found.notes)


def test_is_a_missing_or_empty_source_refused_with_a_message(tmp_path):
    with pytest.raises(ClassSourceError, match="does not exist"):
        read_class(tmp_path / "nowhere", EXERCISE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClassSourceError, match="no .py or .ipynb submissions"):
        read_class(tmp_path / "empty", EXERCISE)
    (tmp_path / "x.tar").write_bytes(b"not a zip")
    with pytest.raises(ClassSourceError, match="neither a folder nor a zip"):
        read_class(tmp_path / "x.tar", EXERCISE)


def test_is_a_zip_member_read_in_memory_whatever_its_path(tmp_path):
    """A member named ../../x.py is a student's file like any other: nothing is written outside, or at all."""
    source = zipped(tmp_path / "evil.zip", {"../../escape.py": b"x = 1\n", "../../ada.py": b"y = 2\n"})
    assert students(source) == {"escape": ("escape.py", b"x = 1\n"), "ada": ("ada.py", b"y = 2\n")}
    assert not (tmp_path.parent / "escape.py").exists()


def test_does_a_zip_of_student_folders_name_each_student_by_their_folder(tmp_path):
    source = zipped(tmp_path / "folders.zip", {"ada/solution.py": b"ada", "grace/solution.py": b"grace"})
    assert students(source) == {"ada": ("solution.py", b"ada"), "grace": ("solution.py", b"grace")}


def test_is_a_stray_file_in_an_lms_zip_left_out_with_a_note_and_no_student_lost(tmp_path):
    moodle = zipped(tmp_path / "moodle.zip", {
        "Ada Lovelace_101_assignsubmission_file_/solution.py": b"ada",
        "Grace Hopper_102_assignsubmission_file_/solution.py": b"grace",
        "grading_notes.py": b"the tutor's",
    })
    found = read_class(moodle, EXERCISE)
    assert sorted(f.student for f in found.files) == ["Ada Lovelace_101", "Grace Hopper_102"]
    assert any("grading_notes.py" in n and "left out" in n for n in found.notes)
    canvas = zipped(tmp_path / "canvas.zip", {"smithbob_12_102_solution.py": b"bob", "smithbob_LATE_12_103_solution.py":
                                              b"bob late", "readme.py": b"stray"})
    found = read_class(canvas, EXERCISE)
    assert {f.student: f.content for f in found.files} == {"smithbob_12": b"bob late"}


def test_does_an_unreadable_file_stay_its_students_with_the_reason(tmp_path):
    big = tmp_path / "class"
    big.mkdir()
    (big / "ada.py").write_bytes(b"#" * (33 << 20))
    (big / "grace.py").write_text("x = 1\n")
    (big / "link.py").symlink_to(big / "grace.py")
    found = read_class(big, EXERCISE)
    ada = next(f for f in found.files if f.student == "ada")
    assert ada.content == b"" and "over the 32 MiB" in ada.problem
    assert sorted(f.student for f in found.files) == ["ada", "grace"]
    assert any("link.py: a symbolic link, not followed" in n for n in found.notes)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("ada.py", "".join(f"x{i} = {i * 7919 % 10007}\n" for i in range(2000)))  # 2 KB compressed
        z.writestr("grace.py", "y = 2\n")
    raw = bytearray(damaged.read_bytes())
    start = raw.index(b"ada.py") + len(b"ada.py")
    raw[start + 5: start + 40] = b"\xff" * 35  # the compressed bytes of ada.py
    damaged.write_bytes(bytes(raw))
    found = {f.student: f for f in read_class(damaged, EXERCISE).files}
    assert "could not be read from the zip" in found["ada"].problem and found["grace"].content == b"y = 2\n"


def test_is_a_file_name_that_is_not_utf8_a_student_of_its_own(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "café.py").write_text("a = 1\n")
    os.close(os.open(os.fsencode(folder) + b"/caf\xe9-2.py", os.O_CREAT | os.O_WRONLY))  # Latin-1 bytes
    names = sorted(f.student for f in read_class(folder, EXERCISE).files)
    assert names == ["café", "caf\ufffd-2"] and all(n.encode("utf-8") for n in names)
