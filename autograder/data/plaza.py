"""A synthetic plaza: people crossing a 640x480 overhead view, simulated with a social force model.

NOT REAL DATA. This is the offline stand-in for the Edinburgh Informatics Forum Pedestrian Database (Majecka
2009; Fisher and Majecka, https://homepages.inf.ed.ac.uk/rbf/FORUMTRACKING/), built to look like it to a model
that sees only windows of positions: the same 640x480 pixels at 24.7 mm a pixel, about 9 frames a second, doors
on the borders where the real days' tracks start and end (front door bottom left, stairs top centre, lift top
right, labs bottom right, cafe top left, a few minor ones), integer pixel coordinates, dropped detections.

The motion is the social force model of Helbing and Molnar (1995), "Social force model for pedestrian dynamics",
Phys. Rev. E 51, 4282:

- a driving force ``(v0 * e - v) / tau`` towards the current waypoint, relaxation time ``tau`` = 0.5 s, desired
  speeds ``v0`` drawn from a normal distribution with mean 1.34 m/s and sd 0.26 m/s (their values);
- a repulsion between pedestrians ``-grad V(d)`` with ``V(d) = V0 * exp(-d / sigma)``, ``V0`` = 2.1 m^2/s^2,
  ``sigma`` = 0.3 m (their values; the paper's ellipse, which accounts for the other's step, is simplified to a
  circle: ``d`` is the distance between the two);
- weaker influence from behind: forces from outside the field of view (``2 phi`` = 200 degrees) are weighted by
  ``c`` = 0.5; speeds are capped at 1.3 ``v0``.

On top of it: a via point off the straight line between the doors (gentle curvature), a slowly drifting heading
(an Ornstein-Uhlenbeck process on the angle; mild turns), people who visit one to three places in the plaza and
sometimes pause there, and a few who stand for up to a minute (their windows fail the course's motion filter,
as the real days' loiterers do); the tracker's noise (jitter and now and then a jump, in pixels), rounding to
whole pixels and dropped detections (gaps in the frame numbers).

The package for this model on PyPI, ``PySocialForce`` (1.1.2, last released 2020), requires numba, toml and
scipy and steps the extended model (groups, obstacles) one scene at a time; this compact numpy version simulates
many independent stretches of a day side by side (a batch axis), so a day of 1,000 people takes about 1.5 s, with
nothing to install. Every random draw comes from one seeded ``numpy.random.Generator`` in a fixed order, so a seed
gives the same trajectories every time. The output is whole pixels, so last-bit differences between machines'
``exp`` or ``cos`` change it only where they tip a threshold (a rounding, a waypoint reached): unlikely, not
impossible; ``trajectories.SYNTHETIC_SHA256`` pins the files, and a machine that simulates other bytes warns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SIDES = ("top", "bottom", "left", "right")


@dataclass(frozen=True)
class Door:
    """An entrance and exit: a stretch ``lo``..``hi`` (pixels) along one border of the view."""

    name: str
    side: str  # "top" (y = 0), "bottom" (y = the tracked height), "left" (x = 0), "right" (x = the width)
    lo: float
    hi: float
    weight: float  # share of the people who enter (and, among the others, leave) here


# Where the tracks of the two real days start and end (20-pixel histograms of their first and last points), with
# the names the database's page gives the main ones.
DOORS = (
    Door("stairs", "top", 270, 340, 0.28),
    Door("front door", "bottom", 80, 160, 0.30),
    Door("labs", "bottom", 570, 630, 0.09),
    Door("lift", "right", 5, 60, 0.09),
    Door("cafe", "top", 190, 260, 0.08),
    Door("north corridor", "top", 440, 500, 0.06),
    Door("south", "bottom", 240, 300, 0.04),
    Door("west", "left", 250, 330, 0.03),
    Door("north-east", "top", 580, 630, 0.03),
)

WALKER, VISITOR, LOITERER = 0, 1, 2


@dataclass(frozen=True)
class PlazaConfig:
    """One synthetic day. Lengths in pixels or metres as named, times in seconds unless ``_frames``."""

    people: int = 1000
    seed: int = 0
    clips: int = 32  # independent stretches of the day, simulated side by side (a batch axis)
    arrivals_per_s: float = 0.15  # per clip; with ~12 s in view: about 2 people at a time, as in the Forum
    slots: int = 12  # at most this many people in view in one clip (an arrival waits for a free slot)
    fps: float = 9.0
    metres_per_pixel: float = 0.0247
    width: float = 640.0
    tracked_height: float = 460.0  # the real days' tracks never go below y = 456
    # Helbing and Molnar (1995)
    speed_mean: float = 1.34  # m/s
    speed_sd: float = 0.26
    tau: float = 0.5  # s
    repulsion: float = 2.1  # V0, m^2/s^2
    range_m: float = 0.3  # sigma, m
    field_of_view_deg: float = 200.0
    behind_weight: float = 0.5
    max_speed_factor: float = 1.3
    # the paths
    visitors: float = 0.03  # share who visit 1-3 places in the plaza, pausing at each with chance 0.4 (2-10 s)
    loiterers: float = 0.04  # share who stand somewhere for a while (loiter_s)
    loiter_s: tuple[float, float] = (10.0, 60.0)
    detour_sd: float = 0.12  # the via point's offset from the straight line, as a share of its length
    heading_sd: float = 0.2  # rad, stationary sd of the heading's drift
    heading_tau: float = 2.0  # s
    margin: float = 60.0  # px: interior places are at least this far from the borders
    # the tracker
    noise_px: float = 0.8
    jump_rate: float = 0.1
    jump_px: float = 5.0
    drop: float = 0.025  # chance that a detection is missing (a gap in the frame numbers)
    acquire_frames: int = 6  # a track starts up to this many frames late and ends up to this many early
    min_points: int = 19  # the real days hold no track shorter than 19 points
    max_seconds: float = 240.0  # nobody stays longer


def _door_points(rng: np.random.Generator, doors: np.ndarray, cfg: PlazaConfig, outward_px: float) -> np.ndarray:
    """A random point of each door (index array), ``outward_px`` beyond its border (negative: inside), pixels."""
    spans = np.array([[d.lo, d.hi] for d in DOORS])[doors]  # (P, 2)
    along = rng.uniform(spans[:, 0], spans[:, 1])  # (P,)
    sides = np.array([SIDES.index(d.side) for d in DOORS])[doors]
    x = np.where(sides == 2, -outward_px, np.where(sides == 3, cfg.width + outward_px, along))
    y = np.where(sides == 0, -outward_px, np.where(sides == 1, cfg.tracked_height + outward_px, along))
    return np.stack([x, y], axis=-1)  # (P, 2)


def _plan(rng: np.random.Generator, cfg: PlazaConfig):
    """Every person's arrival, kind, desired speed, start, waypoints (the last is outside the exit door), how
    close to each counts as reached and how long to pause there. Pixels and frames."""
    n = cfg.people
    weights = np.array([d.weight for d in DOORS])
    weights = weights / weights.sum()
    origin = rng.choice(len(DOORS), size=n, p=weights)
    others = np.tile(weights, (n, 1))  # (P, doors): leave by another door
    others[np.arange(n), origin] = 0
    cumulative = np.cumsum(others / others.sum(1, keepdims=True), axis=1)
    exit_door = np.minimum((cumulative < rng.uniform(size=(n, 1))).sum(1), len(DOORS) - 1)
    kind = np.where(rng.uniform(size=n) < cfg.loiterers, LOITERER,
                    np.where(rng.uniform(size=n) < cfg.visitors / (1 - cfg.loiterers), VISITOR, WALKER))
    speed = np.clip(rng.normal(cfg.speed_mean, cfg.speed_sd, size=n), 0.5, 2.3)
    speed = np.where(kind == WALKER, speed, 0.8 * speed)  # strollers
    start = _door_points(rng, origin, cfg, -3.0)
    goal = _door_points(rng, exit_door, cfg, 20.0)

    slots = 4  # waypoints: up to 3 places (or 1 via point), then the exit
    waypoints = np.repeat(goal[:, None, :], slots, axis=1)  # (P, 4, 2)
    radius = np.full((n, slots), 15.0)  # px; a via point is passed when within 60 px
    pause = np.zeros((n, slots), dtype=np.int64)  # frames
    count = np.ones(n, dtype=np.int64)
    lo, hi = cfg.margin, np.array([cfg.width, cfg.tracked_height]) - cfg.margin

    # walkers: one via point off the straight line, then the exit
    chord = goal - start  # (P, 2)
    length = np.linalg.norm(chord, axis=1, keepdims=True)
    normal = np.stack([-chord[:, 1], chord[:, 0]], axis=1) / np.maximum(length, 1e-9)
    via = start + 0.5 * chord + normal * rng.normal(0, cfg.detour_sd, size=(n, 1)) * length
    via = np.clip(via, lo, hi)
    walkers = kind == WALKER
    waypoints[walkers, 0] = via[walkers]
    radius[walkers, 0] = 60.0
    count[walkers] = 2

    # visitors: 1-3 places, a pause at each with chance 0.4 (2-10 s); loiterers: one place, a long pause
    places = rng.uniform(lo, hi, size=(n, 3, 2))
    visits = np.where(kind == VISITOR, rng.integers(1, 4, size=n), 1)
    pauses = np.where(rng.uniform(size=(n, 3)) < 0.4, rng.uniform(2, 10, size=(n, 3)), 0.0)
    long_pause = rng.uniform(*cfg.loiter_s, size=n)
    for k in range(3):
        chosen = (kind != WALKER) & (visits > k)
        waypoints[chosen, k] = places[chosen, k]
        pause[chosen, k] = np.round(np.where(kind[chosen] == LOITERER, long_pause[chosen], pauses[chosen, k])
                                    * cfg.fps).astype(np.int64)
    others = kind != WALKER
    waypoints[others, visits[others]] = goal[others]
    count[others] = visits[others] + 1
    arrivals = _arrival_frames(rng, cfg)
    return dict(arrival=arrivals, kind=kind, speed=speed, start=start, waypoints=waypoints, radius=radius,
                pause=pause, count=count)


def _arrival_frames(rng: np.random.Generator, cfg: PlazaConfig) -> np.ndarray:
    """(P, 2): each person's clip and arrival frame; person p belongs to clip p % clips (Poisson arrivals)."""
    clip = np.arange(cfg.people) % cfg.clips
    gaps = rng.exponential(cfg.fps / cfg.arrivals_per_s, size=cfg.people)
    frame = np.zeros(cfg.people)
    for c in range(cfg.clips):
        members = clip == c
        frame[members] = np.cumsum(gaps[members])
    return np.stack([clip, np.floor(frame).astype(np.int64)], axis=1)


def simulate(cfg: PlazaConfig) -> list[np.ndarray]:
    """Simulate one day; return each person's track as an (n, 3) float64 array of whole-pixel x, y and a frame
    number, ordered by first frame. Deterministic for a given ``cfg`` (its ``seed`` included)."""
    rng = np.random.default_rng(cfg.seed)
    plan = _plan(rng, cfg)
    px = 1.0 / cfg.metres_per_pixel  # metres -> pixels
    dt = 1.0 / cfg.fps
    # forces in m/s^2 applied to pixel positions: work in pixels and seconds throughout
    strength = cfg.repulsion / cfg.range_m * px  # px/s^2 at contact
    range_px = cfg.range_m * px
    cos_fov = np.cos(np.deg2rad(cfg.field_of_view_deg / 2))
    heading_keep = 1 - dt / cfg.heading_tau
    heading_kick = cfg.heading_sd * np.sqrt(2 * dt / cfg.heading_tau)

    B, K = cfg.clips, cfg.slots
    clip_of, arrival = plan["arrival"][:, 0], plan["arrival"][:, 1]
    queue = [np.flatnonzero(clip_of == c) for c in range(B)]  # people of each clip, in arrival order
    queue_len = np.array([len(q) for q in queue])
    queue_arr = np.full((B, max(queue_len)), -1)
    for c, q in enumerate(queue):
        queue_arr[c, :len(q)] = q
    next_in = np.zeros(B, dtype=np.int64)

    pid = np.full((B, K), -1)
    pos = np.zeros((B, K, 2))
    vel = np.zeros((B, K, 2))
    stage = np.zeros((B, K), dtype=np.int64)
    paused = np.zeros((B, K), dtype=np.int64)
    heading = np.zeros((B, K))
    born = np.zeros((B, K), dtype=np.int64)
    eye = np.eye(K, dtype=bool)[None]  # (1, K, K)
    records: list[tuple[np.ndarray, int, np.ndarray]] = []
    limit = int(arrival.max()) + int(cfg.max_seconds * cfg.fps) + 1
    for t in range(limit):
        # arrivals: at most one per clip and frame, into the first free slot
        waiting = np.minimum(next_in, queue_len - 1)
        due = (next_in < queue_len) & (arrival[queue_arr[np.arange(B), waiting]] <= t) & (pid < 0).any(1)
        if due.any():
            clips = np.flatnonzero(due)
            slot = (pid[clips] < 0).argmax(1)
            who = queue_arr[clips, next_in[clips]]
            pid[clips, slot] = who
            pos[clips, slot] = plan["start"][who]
            aim = plan["waypoints"][who, 0] - plan["start"][who]
            vel[clips, slot] = 0.8 * plan["speed"][who, None] * px * aim / np.linalg.norm(aim, axis=1, keepdims=True)
            stage[clips, slot] = 0
            paused[clips, slot] = 0
            heading[clips, slot] = 0.0
            born[clips, slot] = t
            next_in[clips] += 1
        active = pid >= 0
        if not active.any():
            if (next_in >= queue_len).all():
                break
            heading = heading_keep * heading + heading_kick * rng.standard_normal((B, K))
            continue
        who = np.where(active, pid, 0)

        # driving force towards the current waypoint, direction drifting by the heading angle
        target = plan["waypoints"][who, stage]  # (B, K, 2)
        to_target = target - pos
        distance = np.linalg.norm(to_target, axis=-1)  # (B, K)
        e = to_target / np.maximum(distance, 1e-9)[..., None]
        cos_h, sin_h = np.cos(heading), np.sin(heading)
        e = np.stack([cos_h * e[..., 0] - sin_h * e[..., 1], sin_h * e[..., 0] + cos_h * e[..., 1]], axis=-1)
        v0 = plan["speed"][who] * px  # (B, K) px/s
        stops_here = plan["pause"][who, stage] > 0
        desired = np.where(paused > 0, 0.0, v0 * np.where(stops_here, np.minimum(1.0, distance / (1.0 * px)), 1.0))
        force = (desired[..., None] * e - vel) / cfg.tau

        # repulsion between the people of the same clip: exponential in their distance
        diff = pos[:, :, None, :] - pos[:, None, :, :]  # (B, K, K, 2): from b to a
        gap = np.linalg.norm(diff, axis=-1)  # (B, K, K)
        pair = active[:, :, None] & active[:, None, :] & ~eye
        n_ab = diff / np.maximum(gap, 1e-9)[..., None]
        push = strength * np.exp(-gap / range_px) * pair
        in_view = np.einsum("bkd,bkjd->bkj", e, -n_ab) >= cos_fov  # is b ahead of a (within the field of view)
        push = push * np.where(in_view, 1.0, cfg.behind_weight)
        force += (push[..., None] * n_ab).sum(2)

        vel = np.where(active[..., None], vel + force * dt, 0.0)
        speed = np.linalg.norm(vel, axis=-1)
        cap = cfg.max_speed_factor * v0
        vel *= np.where(speed > cap, cap / np.maximum(speed, 1e-9), 1.0)[..., None]
        pos = np.where(active[..., None], pos + vel * dt, 0.0)
        heading = heading_keep * heading + heading_kick * rng.standard_normal((B, K))

        # waypoints reached: pause there (if planned), then head for the next
        paused = np.maximum(paused - 1, 0)
        last = plan["count"][who] - 1
        reached = active & (stage < last) & (np.linalg.norm(target - pos, axis=-1) < plan["radius"][who, stage])
        paused = np.where(reached, plan["pause"][who, stage], paused)
        stage = np.where(reached, stage + 1, stage)

        # record, then let those who left the view (or stayed too long) go
        b, k = np.nonzero(active)
        records.append((pid[b, k].copy(), t, pos[b, k].copy()))
        outside = (pos[..., 0] < 0) | (pos[..., 0] > cfg.width) | (pos[..., 1] < 0) | (pos[..., 1] > cfg.tracked_height)
        gone = active & (outside | (t - born > cfg.max_seconds * cfg.fps))
        pid[gone] = -1
    else:
        log.warning("synthetic plaza: the simulation reached its frame limit with people still in view")
    return _observe(rng, cfg, records, clip_of, t + 1)


def _observe(rng: np.random.Generator, cfg: PlazaConfig, records, clip_of: np.ndarray, frames: int) -> list[np.ndarray]:
    """The tracker's view of the simulated positions: noise, whole pixels, missed detections, day frame numbers."""
    people = np.concatenate([r[0] for r in records])
    frame = np.concatenate([np.full(len(r[0]), r[1]) for r in records])
    xy = np.concatenate([r[2] for r in records])  # (rows, 2) pixels
    order = np.lexsort((frame, people))  # by person, then time
    people, frame, xy = people[order], frame[order], xy[order]
    # the detector's centre of mass: small jitter, and now and then a jump (a blob split, merged or cut)
    jump = rng.uniform(size=(len(xy), 1)) < cfg.jump_rate
    xy = np.round(xy + rng.normal(0, cfg.noise_px, size=xy.shape) + jump * rng.normal(0, cfg.jump_px, size=xy.shape))
    xy[:, 0] = np.clip(xy[:, 0], 0, cfg.width - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, cfg.tracked_height)
    # the tracker picks a person up a few frames after they enter and loses them a few frames before they leave
    starts = np.flatnonzero(np.r_[True, people[1:] != people[:-1]])
    lengths = np.diff(np.r_[starts, len(people)])
    index = np.arange(len(people)) - np.repeat(starts, lengths)  # row number within the person's track
    late = rng.integers(0, cfg.acquire_frames + 1, size=cfg.people)[people]
    early = rng.integers(0, cfg.acquire_frames + 1, size=cfg.people)[people]
    end = np.repeat(lengths, lengths) - 1 - early
    keep = (rng.uniform(size=len(people)) >= cfg.drop) | (index == late) | (index == end)  # the ends stay
    keep &= (index >= late) & (index <= end)
    offset = 100 + clip_of[people] * (frames + 900)  # clips one after another in the day, 100 s apart
    rows = np.column_stack([xy, frame + offset])[keep]  # (kept, 3)
    starts = np.flatnonzero(np.r_[True, people[keep][1:] != people[keep][:-1]])
    tracks = [t for t in np.split(rows, starts[1:]) if len(t) >= cfg.min_points]
    tracks.sort(key=lambda t: t[0, 2])
    return tracks
