"""The simulated fish and their rows: who is imaged on a day, their photos' fields, and their labels.

Every random draw is seeded from (seed, day, stream, block of fish), never from what came before,
so any day's rows can be made alone, in any order, on any number of processes, and come out the
same (`synthetic.py` writes them to files, in parallel, and holds the settings).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, NamedTuple, Protocol

from zfish_assets.dagster_names import RAW_TABLES as TABLES


class SimSettings(Protocol):
    """What the rows depend on: `synthetic.SimSettings` (which checks each value) is one; named here as a
    protocol so this module needs nothing from the one that writes its rows to files."""

    start: date
    fish_per_day: int
    images_per_fish: int
    label_delay_days: int
    seed: int
    label_delay_spread: tuple[int, int] | None


TREATMENTS = ("control", "drug_a", "drug_b")
GENES = ("gene_a", "gene_b", "gene_c")

FISH_PER_BLOCK = 1000
"""Fish per unit of randomness and of parallel work; fixed, so the bytes ignore the worker count."""

_TREATMENT_EFFECT = {"control": 0.0, "drug_a": 1.2, "drug_b": -0.8}
_LAB_OPENS, _LAB_CLOSES, _LAST_SECOND = 8 * 3600, 18 * 3600, 24 * 3600 - 1
_MASK64 = (1 << 64) - 1
_MIX_MULTIPLIERS = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
_UNMIX_MULTIPLIERS = tuple(pow(multiplier, -1, 1 << 64) for multiplier in _MIX_MULTIPLIERS)


class _Fish(NamedTuple):
    """One fish's traits: shared by its photos and by its label, so the label is learnable from them."""

    number: int
    treatment: str
    genes: dict[str, float]
    sex: str
    age_days: int
    length_mm: float


def _rng(seed: int, day: date, stream: str, block: int) -> random.Random:
    """An RNG owned by one (seed, day, stream, block): no draw depends on another day or block."""
    key = f"zfish|{seed}|{day.isoformat()}|{stream}|{block}".encode()
    return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=16).digest(), "big"))


def blocks(sim: SimSettings) -> range:
    """The block numbers of one day's fish."""
    return range(math.ceil(sim.fish_per_day / FISH_PER_BLOCK))


def first_fish(sim: SimSettings, day: date) -> int:
    """The number of the first fish imaged on `day`: fish are numbered from 0 over the whole simulation."""
    return (day - sim.start).days * sim.fish_per_day


def _fish(sim: SimSettings, day: date, block: int) -> list[_Fish]:
    """The fish of `block` imaged on `day`."""
    rng = _rng(sim.seed, day, "fish", block)
    first = first_fish(sim, day) + block * FISH_PER_BLOCK
    count = min(FISH_PER_BLOCK, sim.fish_per_day - block * FISH_PER_BLOCK)
    fish = []
    for number in range(first, first + count):
        age_days = rng.randint(3, 30)
        fish.append(
            _Fish(
                number=number,
                treatment=rng.choice(TREATMENTS),
                genes={gene: round(rng.gauss(0.0, 1.0), 4) for gene in GENES},
                sex=rng.choice("MF"),
                age_days=age_days,
                length_mm=max(1.0, 2.5 + 0.22 * age_days + rng.gauss(0.0, 0.3)),
            )
        )
    return fish


def _condition_probability(fish: _Fish) -> float:
    """The chance a fish develops the condition: driven by treatment and genes, so a model can learn it."""
    genes = fish.genes
    logit = -1.0 + _TREATMENT_EFFECT[fish.treatment] + 1.4 * genes["gene_a"] - 0.9 * genes["gene_b"]
    logit += 0.5 * genes["gene_a"] * genes["gene_c"]
    return 1.0 / (1.0 + math.exp(-logit))


def _fish_id(number: int) -> str:
    return f"zfish_{number:05d}"


def _mix64(value: int) -> int:
    """SplitMix64's finalizer: a bijection on 64 bits that makes consecutive numbers look random."""
    value = ((value ^ (value >> 30)) * _MIX_MULTIPLIERS[0]) & _MASK64
    value = ((value ^ (value >> 27)) * _MIX_MULTIPLIERS[1]) & _MASK64
    return value ^ (value >> 31)


def _unshift(value: int, shift: int) -> int:
    """Undo `value ^= value >> shift`: each round recovers `shift` more of the top bits."""
    result = value
    for _ in range(64 // shift):
        result = value ^ (result >> shift)
    return result


def _unmix64(value: int) -> int:
    """The inverse of `_mix64`, to tell which photo an image id names."""
    value = (_unshift(value, 31) * _UNMIX_MULTIPLIERS[1]) & _MASK64
    value = (_unshift(value, 27) * _UNMIX_MULTIPLIERS[0]) & _MASK64
    return _unshift(value, 30)


def image_id_keys(seed: int) -> tuple[int, int]:
    digest = hashlib.blake2b(f"zfish|{seed}|image_id".encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big")


def _image_id(keys: tuple[int, int], sequence: int) -> str:
    """A UUID-shaped id for the `sequence`-th photo of the simulation.

    The high half is a bijection of the sequence number, so ids are unique by construction (not by
    luck), yet look random and change with the seed.
    """
    high = _mix64(sequence ^ keys[0])
    low = _mix64(high ^ keys[1])
    hexa = f"{high:016x}{low:016x}"
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def image_sequence(keys: tuple[int, int], image_id: str) -> int | None:
    """The sequence number `image_id` was made from under `keys`, or None when they did not make it."""
    try:
        sequence = _unmix64(int(image_id.replace("-", "")[:16], 16)) ^ keys[0]
    except ValueError:
        return None
    return sequence if _image_id(keys, sequence) == image_id else None


def _timestamp(day_prefix: str, second: int) -> str:
    return f"{day_prefix}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"


def observation_rows(sim: SimSettings, day: date, block: int) -> Iterator[dict[str, Any]]:
    """The photos of one block of fish: a session in lab hours, a few noisy length measurements each."""
    rng = _rng(sim.seed, day, "observations", block)
    keys = image_id_keys(sim.seed)
    day_prefix = day.isoformat()
    for fish in _fish(sim, day, block):
        fish_id = _fish_id(fish.number)
        second = rng.randint(_LAB_OPENS, _LAB_CLOSES)
        for image in range(sim.images_per_fish):
            if image:  # 20 s to 4 min later; `random()` as it is several times cheaper than `randint`
                second = min(second + 20 + int(rng.random() * 220), _LAST_SECOND)
            yield {
                "fish_id": fish_id,
                "image_id": _image_id(keys, fish.number * sim.images_per_fish + image),
                "timestamp": _timestamp(day_prefix, second),
                "age_days": fish.age_days,
                "treatment": fish.treatment,
                "genetic_markers": dict(fish.genes),
                "length_mm": round(max(0.5, fish.length_mm + rng.gauss(0.0, 0.05)), 2),
                "sex": fish.sex,
            }


def _outcome_rows(sim: SimSettings, cohort: date, block: int) -> Iterator[dict[str, Any]]:
    """The labels of one block of the fish imaged on `cohort`."""
    rng = _rng(sim.seed, cohort, "outcomes", block)
    for fish in _fish(sim, cohort, block):
        yield {"fish_id": _fish_id(fish.number), "condition_developed": rng.random() < _condition_probability(fish)}


def _label_delays(sim: SimSettings, cohort: date, spread: tuple[int, int], block: int) -> list[int]:
    """Each fish's label delay in one block of `cohort`, from a stream of its own (the labels' draws stay)."""
    rng = _rng(sim.seed, cohort, "label_delays", block)
    count = min(FISH_PER_BLOCK, sim.fish_per_day - block * FISH_PER_BLOCK)
    return [rng.randint(*spread) for _ in range(count)]


def _label_cohorts(sim: SimSettings, day: date) -> list[date]:
    """The imaging days whose fish may get their label on `day`, oldest first."""
    low, high = sim.label_delay_spread or (sim.label_delay_days, sim.label_delay_days)
    cohorts = (day - timedelta(days=delay) for delay in range(high, low - 1, -1))
    return [cohort for cohort in cohorts if cohort >= sim.start]


def labels_arriving(sim: SimSettings, day: date, block: int) -> Iterator[dict[str, Any]]:
    """The labels of one block arriving on `day`: per imaging day, the fish whose delay ends on `day`."""
    for cohort in _label_cohorts(sim, day):
        rows = _outcome_rows(sim, cohort, block)
        if sim.label_delay_spread is None:
            yield from rows
            continue
        delays = _label_delays(sim, cohort, sim.label_delay_spread, block)
        yield from (row for row, delay in zip(rows, delays) if cohort + timedelta(days=delay) == day)


def cohort_of(sim: SimSettings, table: str, day: date) -> date | None:
    """The day the fish in `table`'s file for `day` were imaged, or None when that file has no rows.

    Outcomes: the latest such day (with a delay spread, labels of older days may come along).
    """
    if table not in TABLES:
        raise ValueError(f"table={table!r} is not one of {', '.join(TABLES)}")
    if table == "observations":
        return day if day >= sim.start else None
    cohorts = _label_cohorts(sim, day)
    return cohorts[-1] if cohorts else None


def observations_for_day(sim: SimSettings, day: date) -> list[dict[str, Any]]:
    """Every photo taken on `day`, in memory: for tests and small days (`write_day` streams instead)."""
    cohort = cohort_of(sim, "observations", day)
    return [] if cohort is None else [row for block in blocks(sim) for row in observation_rows(sim, cohort, block)]


def outcomes_for_day(sim: SimSettings, day: date) -> list[dict[str, Any]]:
    """Every label arriving on `day`: those of the fish imaged `label_delay_days` (or their own delay) earlier."""
    return [row for block in blocks(sim) for row in labels_arriving(sim, day, block)]
