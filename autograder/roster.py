"""A class's submissions: which student sent which file, read from the layouts tutors have.

``read_class(source, exercise)`` accepts

- a folder of ``<student>.py`` / ``<student>.ipynb`` files (the student is the file's stem);
- nbgrader's tree, ``submitted/<student>/<assignment>/<notebook>.ipynb`` (the course folder or ``submitted``
  itself; the assignment is the exercise's nbgrader folder where the tree has it);
- a zip as an LMS exports it: Moodle's "download all submissions" (``Full Name_123_assignsubmission_file_/x.py``,
  the student ``Full Name_123``), Canvas's (``lovelaceada_123_456_x.py``, ``..._LATE_...``, the student
  ``lovelaceada_123``), or a zip of either layout above.

Each student gets one file. Where a student sent several, the newest is graded (Canvas: the highest
submission id) and a note says which. A zip is read in memory, member by member, within size limits: nothing
from it is written to disk, and no member's path is followed.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .checks import one_line

SUFFIXES = (".py", ".ipynb")
MAX_FILE_BYTES = 32 << 20  # one submission file
MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_BYTES = 4 << 30  # all submission files of one zip, uncompressed

MOODLE = re.compile(r"^(?P<student>.+?_\d+)_(?:assignsubmission|onlinetext)_[a-z]+_/?(?P<file>.*)$")
CANVAS = re.compile(r"^(?P<login>[^_/]+)_(?:late_)?(?P<uid>\d+)_(?P<sub>\d+)_(?P<file>.+)$", re.IGNORECASE)


class ClassSourceError(Exception):
    """The class source cannot be read at all (not found, not a zip, no submissions)."""


@dataclass(frozen=True)
class ClassFile:
    """One student's submission: their name as the layout gives it, the file's name, and its bytes."""

    student: str
    filename: str  # the file's own name (its suffix says .py or .ipynb)
    content: bytes = field(repr=False)
    order: tuple = ()  # what "newest" compares when a student sent several files

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.filename).suffix.lower()


@dataclass
class ClassSource:
    files: list[ClassFile]
    notes: list[str]  # what was skipped or chosen, for the tutor
    layout: str


def _assignment_names(exercise) -> tuple[str, str]:
    """The exercise's nbgrader assignment folder and notebook file name ("" where it has none)."""
    notebook = PurePosixPath(getattr(exercise, "notebook", "") or "")
    return (notebook.parent.name, notebook.name) if notebook.name else ("", "")


def read_class(source: str | Path, exercise) -> ClassSource:
    """Every student's file in ``source`` (a folder, nbgrader's tree or an LMS zip) for ``exercise``."""
    source = Path(source)
    if not source.exists():
        raise ClassSourceError(f"{source} does not exist")
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise ClassSourceError(f"{source} is neither a folder nor a zip file")
        candidates, layout, notes = _from_zip(source, exercise)
    elif (source / "submitted").is_dir() or source.name == "submitted":
        candidates, layout, notes = _from_nbgrader(source if source.name == "submitted" else source / "submitted",
                                                   exercise)
    else:
        candidates, layout, notes = _from_folder(source), "folder", []
    files = _one_per_student(candidates, notes)
    if not files:
        raise ClassSourceError(f"no .py or .ipynb submissions found in {source} (read as {layout})")
    return ClassSource(files=files, notes=[one_line(n) for n in notes], layout=layout)


def _one_per_student(candidates: list[ClassFile], notes: list[str]) -> list[ClassFile]:
    by_student: dict[str, list[ClassFile]] = {}
    for f in candidates:
        by_student.setdefault(f.student, []).append(f)
    chosen = []
    for student in sorted(by_student):
        files = sorted(by_student[student], key=lambda f: (f.order, f.filename))
        if len(files) > 1:
            notes.append(f"{student} sent {len(files)} files: {files[-1].filename} is graded (the newest), "
                         f"not {', '.join(f.filename for f in files[:-1])}")
        chosen.append(files[-1])
    return chosen


def _read_file(path: Path) -> bytes:
    if path.stat().st_size > MAX_FILE_BYTES:
        return b""  # an empty file: graded as one, and the report says it holds nothing
    return path.read_bytes()


def _from_folder(folder: Path) -> list[ClassFile]:
    return [ClassFile(student=p.stem, filename=p.name, content=_read_file(p), order=(p.stat().st_mtime,))
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")]


def _from_nbgrader(submitted: Path, exercise) -> tuple[list[ClassFile], str, list[str]]:
    assignment, notebook = _assignment_names(exercise)
    files, notes = [], []
    for student in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.is_symlink()):
        folders = [p for p in student.iterdir() if p.is_dir() and not p.is_symlink()]
        if assignment:  # the exercise's assignment, or nothing: another assignment is not this exercise
            folder = next((p for p in folders if p.name == assignment), None)
        else:
            folder = folders[0] if len(folders) == 1 else None
        if folder is None:
            if not assignment:
                notes.append(f"{student.name}: {len(folders)} assignment folders in {student}, and the exercise "
                             "names none")
            continue
        books = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
                       and not p.is_symlink())
        book = next((p for p in books if p.name == notebook), books[0] if len(books) == 1 else None)
        if book is None:
            notes.append(f"{student.name}: {len(books)} candidate files in {folder} and none named {notebook or '?'}")
            continue
        files.append(ClassFile(student=student.name, filename=book.name, content=_read_file(book),
                               order=(book.stat().st_mtime,)))
    return files, "nbgrader", notes


def _from_zip(path: Path, exercise) -> tuple[list[ClassFile], str, list[str]]:
    assignment, notebook = _assignment_names(exercise)
    notes: list[str] = []
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ClassSourceError(f"{path} holds {len(infos)} files, more than {MAX_ZIP_MEMBERS}")
        wanted = [i for i in infos if PurePosixPath(i.filename).suffix.lower() in SUFFIXES
                  and "__MACOSX" not in i.filename and not PurePosixPath(i.filename).name.startswith(".")]
        if sum(i.file_size for i in wanted) > MAX_ZIP_BYTES:
            raise ClassSourceError(f"{path} holds more than {MAX_ZIP_BYTES >> 30} GiB of submissions")
        names = [i.filename for i in wanted]
        if names and all(MOODLE.match(n) for n in names):
            layout = "moodle"
        elif names and all(CANVAS.match(PurePosixPath(n).name) for n in names):
            layout = "canvas"
        elif any(PurePosixPath(n).parts[0] == "submitted" or "/submitted/" in f"/{n}" for n in names):
            layout = "nbgrader"
        else:
            layout = "folder"
        files = []
        for info in wanted:
            student, order = _zip_student(info, layout, assignment, notebook, notes)
            if student is None:
                continue
            content = archive.read(info) if info.file_size <= MAX_FILE_BYTES else b""
            files.append(ClassFile(student=student, filename=PurePosixPath(info.filename).name, content=content,
                                   order=order))
    return files, f"{layout} zip", notes


def _zip_student(info: zipfile.ZipInfo, layout: str, assignment: str, notebook: str,
                 notes: list[str]) -> tuple[str | None, tuple]:
    name = info.filename
    when = tuple(info.date_time)
    if layout == "moodle":
        return MOODLE.match(name)["student"], when
    if layout == "canvas":
        m = CANVAS.match(PurePosixPath(name).name)
        return f"{m['login']}_{m['uid']}", (int(m["sub"]), when)
    parts = PurePosixPath(name).parts
    if layout == "nbgrader":
        at = parts.index("submitted")
        rest = parts[at + 1:]
        if len(rest) != 3 or (assignment and rest[1] != assignment) or (notebook and rest[2] != notebook):
            notes.append(f"{name}: not {'submitted/<student>/' + (assignment or '<assignment>')}/"
                         f"{notebook or '<notebook>'}; left out")
            return None, when
        return rest[0], when
    return PurePosixPath(parts[-1]).stem, when
