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
from it is written to disk, and no member's path is followed. In an LMS zip, a file not named as that LMS names
submissions is left out with a note. A file that cannot be read (over 32 MiB, a damaged member) stays its
student's, with the reason (``ClassFile.problem``); a symbolic link is never followed. Student names are made one
printable line (a name that is not UTF-8 gets U+FFFD where its bytes were).
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
    problem: str = ""  # why the file could not be read (too large, a damaged zip member): graded as unreadable

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
        notes = []
        candidates, layout = _from_folder(source, notes), "folder"
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


def student_name(name: str) -> str:
    """A student's name as one printable line of valid text (file names need not be UTF-8)."""
    return one_line(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), 200) or "?"


def _file(student: str, path: Path) -> ClassFile:
    name, size = student_name(path.name), path.stat().st_size
    if size > MAX_FILE_BYTES:
        return ClassFile(student_name(student), name, b"", (path.stat().st_mtime,),
                         f"{name} is {size >> 20} MiB, over the {MAX_FILE_BYTES >> 20} MiB a submission may have")
    return ClassFile(student_name(student), name, path.read_bytes(), (path.stat().st_mtime,))


def _from_folder(folder: Path, notes: list[str]) -> list[ClassFile]:
    files = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in SUFFIXES or p.name.startswith("."):
            continue
        if p.is_symlink():
            notes.append(f"{student_name(p.name)}: a symbolic link, not followed (copy the file itself)")
        elif p.is_file():
            files.append(_file(p.stem, p))
    return files


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
        files.append(_file(student.name, book))
    return files, "nbgrader", notes


def _zip_layout(names: list[str]) -> str:
    """The export a zip comes from: Moodle or Canvas where any member is named as they name submissions (the
    others are strays), nbgrader where any lies under submitted/, else a folder."""
    if any(MOODLE.match(n) for n in names):
        return "moodle"
    if any(CANVAS.match(PurePosixPath(n).name) for n in names):
        return "canvas"
    if any("submitted" in PurePosixPath(n).parts[:-1] for n in names):
        return "nbgrader"
    return "folder"


def _from_zip(path: Path, exercise) -> tuple[list[ClassFile], str, list[str]]:
    assignment, notebook = _assignment_names(exercise)
    notes: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ClassSourceError(f"{path} cannot be read as a zip ({exc})") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ClassSourceError(f"{path} holds {len(infos)} files, more than {MAX_ZIP_MEMBERS}")
        wanted = [i for i in infos if PurePosixPath(i.filename).suffix.lower() in SUFFIXES
                  and "__MACOSX" not in i.filename and not PurePosixPath(i.filename).name.startswith(".")]
        if sum(i.file_size for i in wanted) > MAX_ZIP_BYTES:
            raise ClassSourceError(f"{path} holds more than {MAX_ZIP_BYTES >> 30} GiB of submissions")
        layout = _zip_layout([i.filename for i in wanted])
        parents = {PurePosixPath(i.filename).parent for i in wanted}
        files = []
        for info in wanted:
            student, order = _zip_student(info, layout, assignment, notebook, len(parents) > 1)
            if student is None:
                notes.append(f"{student_name(info.filename)}: not named as a {layout} export names its "
                             "submissions; left out")
                continue
            files.append(_zip_file(archive, info, student_name(student), order))
    return files, f"{layout} zip", notes


def _zip_file(archive: zipfile.ZipFile, info: zipfile.ZipInfo, student: str, order: tuple) -> ClassFile:
    name = student_name(PurePosixPath(info.filename).name)
    if info.file_size > MAX_FILE_BYTES:
        return ClassFile(student, name, b"", order,
                         f"{name} is {info.file_size >> 20} MiB, over the {MAX_FILE_BYTES >> 20} MiB a submission may have")
    try:
        with archive.open(info) as member:
            content = member.read(MAX_FILE_BYTES + 1)
    except Exception as exc:  # noqa: BLE001 - a damaged, encrypted or oddly compressed member: that student's only
        return ClassFile(student, name, b"", order, f"{name} could not be read from the zip ({type(exc).__name__})")
    if len(content) > MAX_FILE_BYTES:  # a member larger than its header says
        return ClassFile(student, name, b"", order, f"{name} is over the {MAX_FILE_BYTES >> 20} MiB a submission may have")
    return ClassFile(student, name, content, order)


def _zip_student(info: zipfile.ZipInfo, layout: str, assignment: str, notebook: str,
                 in_folders: bool) -> tuple[str | None, tuple]:
    """The member's student (None: not named as ``layout`` names submissions) and what orders their files."""
    name = info.filename
    when = tuple(info.date_time)
    path = PurePosixPath(name)
    if layout == "moodle":
        m = MOODLE.match(name)
        return (m["student"] if m else None), when
    if layout == "canvas":
        m = CANVAS.match(path.name)
        return (f"{m['login']}_{m['uid']}" if m else None), ((int(m["sub"]), when) if m else when)
    if layout == "nbgrader":
        parts = path.parts
        if "submitted" not in parts[:-1]:
            return None, when
        rest = parts[parts.index("submitted") + 1:]
        if len(rest) != 3 or (assignment and rest[1] != assignment) or (notebook and rest[2] != notebook):
            return None, when
        return rest[0], when
    # a folder: <student>.py side by side, or <student>/<any name>.py in a folder each
    folder = path.parent.name
    return (folder if in_folders and folder not in ("", ".", "..") else path.stem), when
