"""Does every training profile's threshold stand on a calibration record of the reference, and does a profile
changed since its record fail until it is calibrated again?

The records are written by ``bench/calibrate_training.py --write`` (20 seeds, the reference trained exactly as a
submission is) into ``autograder/exercises/<name>/calibration.json``. Here nothing trains.
"""

from __future__ import annotations

import dataclasses

import pytest

from autograder.calibration import fingerprint, read_records, record_key
from autograder.exercises import get_exercise, names

# The threshold sits below the reference's worst seed (above it, for an error) by a relative margin in this range:
# room for machine-to-machine variation, and no looser than a model that learns far less would need.
MARGIN = (0.01, 0.10)

PROFILES = [(name, part, profile) for name in names() for part in [None, *get_exercise(name).part_profiles]
            for profile in get_exercise(name).profiles_of(part)]


def record_of(name: str, part: str | None, profile: str) -> dict:
    records = read_records(get_exercise(name))
    key = record_key(part, profile)
    assert key in records, (f"{name}: no calibration record {key!r}: run bench/calibrate_training.py --exercise {name}"
                            f"{f' --part {part}' if part else ''} --profile {profile} --write")
    return records[key]


@pytest.mark.parametrize("name, part, profile", PROFILES, ids=[f"{n}-{p or 'model'}-{q}" for n, p, q in PROFILES])
def test_is_the_threshold_held_to_its_calibration_record(name, part, profile):
    exercise = get_exercise(name)
    settings = exercise.profiles_of(part)[profile]
    record = record_of(name, part, profile)
    assert record["fingerprint"] == fingerprint(settings), (
        f"{name} {record_key(part, profile)}: the profile changed since it was calibrated; run "
        f"bench/calibrate_training.py --exercise {name} --profile {profile} --write")
    scoring = exercise.task.scoring
    assert len(record["seeds"]) >= 20
    # every CPU record holds each seed's score (bench/calibrate_training.py --write); the GPU profiles' records
    # are the figures transcribed before per-seed records were kept, until a GPU machine calibrates them
    assert record["scores"] is not None or profile == "gpu", f"{name} {profile}: no per-seed scores"
    if record["scores"] is not None:
        assert len(record["scores"]) == len(record["seeds"])
        worst = min(record["scores"]) if scoring.higher_is_better else max(record["scores"])
        assert worst == pytest.approx(record["worst"], abs=1e-6)
    worst = record["worst"]
    assert scoring.passes(worst, settings.threshold), (worst, settings.threshold)
    margin = abs(worst - settings.threshold) / abs(worst)
    assert MARGIN[0] <= margin <= MARGIN[1], f"threshold {settings.threshold} is {margin:.1%} from the worst seed {worst}"


def test_does_a_changed_profile_no_longer_match_its_record():
    exercise = get_exercise(names()[0])
    profile = exercise.profiles["cpu"]
    assert fingerprint(dataclasses.replace(profile, epochs=profile.epochs + 1)) != fingerprint(profile)
    assert fingerprint(dataclasses.replace(profile, lr=profile.lr * 2)) != fingerprint(profile)
    # the threshold and the time limit decide nothing about the score: changing them needs no new record
    assert fingerprint(dataclasses.replace(profile, threshold=0.5, timeout=1.0)) == fingerprint(profile)
