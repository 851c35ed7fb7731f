"""Calibration records: what the reference scored on a training profile over many seeds, kept beside the exercise.

``bench/calibrate_training.py --write`` trains the reference exactly as the grader trains a submission and
writes the record into ``autograder/exercises/<name>/calibration.json``; a fast test holds every profile's
threshold to its record (passed by the reference's worst seed, with a margin) and fails when a profile's fields
change without a new record (``fingerprint``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

# The fields of a profile that do not change what the reference scores: they are left out of its fingerprint.
UNSCORED_FIELDS = ("threshold", "timeout")


def fingerprint(profile) -> str:
    """A digest of every field of ``profile`` that decides what training scores (not its threshold or timeout)."""
    fields = {k: v for k, v in dataclasses.asdict(profile).items() if k not in UNSCORED_FIELDS}
    text = json.dumps(fields, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_key(part: str | None, profile_name: str) -> str:
    """``"<profile>"`` for the exercise's first trained part, ``"<part>/<profile>"`` for a further one."""
    return f"{part}/{profile_name}" if part else profile_name


def record_path(exercise) -> Path:
    """Where ``exercise``'s records live: beside its package."""
    import importlib

    return Path(importlib.import_module(f"autograder.exercises.{exercise.name}").__file__).parent / "calibration.json"


def read_records(exercise) -> dict:
    path = record_path(exercise)
    return json.loads(path.read_text()) if path.exists() else {}


def write_record(exercise, key: str, record: dict) -> Path:
    records = read_records(exercise)
    records[key] = record
    path = record_path(exercise)
    path.write_text(json.dumps(dict(sorted(records.items())), indent=1) + "\n")
    return path
