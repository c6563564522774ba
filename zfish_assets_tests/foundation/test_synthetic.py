"""The simulator and `zfish generate`, checked by reading the written files back."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from zfish_assets.tools.cli import main
from zfish_assets.synthetic import SimSettings, WrittenDay, generate, write_day
from zfish_assets.synthetic_rows import observations_for_day, outcomes_for_day

START = date(2025, 4, 5)
SIM = SimSettings(start=START)
OBSERVATION_FIELDS = {
    "fish_id",
    "image_id",
    "timestamp",
    "age_days",
    "treatment",
    "genetic_markers",
    "length_mm",
    "sex",
}
FISH_ID = re.compile(r"zfish_\d{5}")
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}:\d{2}Z")


def day_of(folder: Path) -> date:
    return date.fromisoformat(folder.name.removeprefix("day="))


def read_observations(root: Path) -> dict[date, list[tuple[Path, str]]]:
    """Each day's observation files with their raw text."""
    return {
        day_of(folder): [(path, path.read_text()) for path in sorted(folder.iterdir())]
        for folder in sorted((root / "observations").iterdir())
    }


def read_outcomes(root: Path) -> dict[date, list[dict]]:
    """Each day's outcome objects, parsed line by line (JSON Lines)."""
    days = {}
    for folder in sorted((root / "outcomes").iterdir()) if (root / "outcomes").exists() else []:
        (path,) = folder.iterdir()
        assert path.name == f"outcomes-{day_of(folder).isoformat()}.json"
        days[day_of(folder)] = [json.loads(line) for line in path.read_text().splitlines()]
    return days


def fish_ids(files: list[tuple[Path, str]]) -> set[str]:
    return {json.loads(text)["fish_id"] for _, text in files}


def encode_line(row: dict) -> bytes:
    return (json.dumps(row, separators=(",", ":")) + "\n").encode()


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def sim_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment of the walkthrough: only the start is set, the rest takes the defaults."""
    monkeypatch.setenv("ZFISH_SIM_START", "2025-04-05")
    for var in ("ZFISH_FISH_PER_DAY", "ZFISH_IMAGES_PER_FISH", "ZFISH_LABEL_DELAY_DAYS", "ZFISH_SEED"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The walkthrough's raw data up to the evening of 2025-05-10."""
    root = tmp_path_factory.mktemp("walkthrough")
    generate(SIM, root, START, date(2025, 5, 10))
    return root


def test_walkthrough_totals_through_may_10(walkthrough: Path) -> None:
    observations = read_observations(walkthrough)
    outcomes = read_outcomes(walkthrough)
    assert sum(map(len, observations.values())) == 540
    assert sum(map(len, outcomes.values())) == 20
    assert list(observations) == [START + timedelta(days=n) for n in range(36)]
    assert list(outcomes) == [date(2025, 5, day) for day in (7, 8, 9, 10)]  # no folder for label-less days


def test_may_11_alone_brings_15_observations_and_5_outcomes(walkthrough: Path, tmp_path: Path) -> None:
    summary = generate(SIM, tmp_path, date(2025, 5, 11), date(2025, 5, 11))
    observations = read_observations(tmp_path)[date(2025, 5, 11)]
    outcomes = read_outcomes(tmp_path)[date(2025, 5, 11)]
    assert (len(observations), len(outcomes)) == (15, 5)
    assert sum(map(len, read_observations(walkthrough).values())) + len(observations) == 555
    assert sum(map(len, read_outcomes(walkthrough).values())) + len(outcomes) == 25
    assert summary["observations"] == 15 and summary["outcomes"] == 5 and summary["files"] == 16


def test_each_observation_file_holds_one_typed_object(walkthrough: Path) -> None:
    image_ids = []
    for day, files in read_observations(walkthrough).items():
        for path, text in files:
            assert text.endswith("}\n") and text.count("\n") == 1
            row = json.loads(text)
            assert set(row) == OBSERVATION_FIELDS
            assert path.name == f"{row['image_id']}.json"
            assert FISH_ID.fullmatch(row["fish_id"])
            assert TIMESTAMP.fullmatch(row["timestamp"]).group(1) == day.isoformat()
            assert type(row["age_days"]) is int
            assert row["treatment"] in {"control", "drug_a", "drug_b"}
            assert set(row["genetic_markers"]) == {"gene_a", "gene_b", "gene_c"}
            assert all(type(v) is float and round(v, 4) == v for v in row["genetic_markers"].values())
            assert type(row["length_mm"]) is float and re.search(r'"length_mm":\d+\.\d+', text)
            assert row["sex"] in {"M", "F"}
            image_ids.append(row["image_id"])
    assert len(image_ids) == len(set(image_ids)) == 540


def test_fish_are_numbered_over_the_simulation_and_imaged_images_per_fish_times(walkthrough: Path) -> None:
    per_fish: dict[str, list[dict]] = {}
    for files in read_observations(walkthrough).values():
        for _, text in files:
            row = json.loads(text)
            per_fish.setdefault(row["fish_id"], []).append(row)
    assert sorted(per_fish) == [f"zfish_{n:05d}" for n in range(36 * 5)]
    for rows in per_fish.values():
        assert len(rows) == 3
        traits = {json.dumps([r["age_days"], r["treatment"], r["genetic_markers"], r["sex"]]) for r in rows}
        assert len(traits) == 1  # photos of one fish differ only in time and measured length


def test_outcomes_are_json_lines_labelling_the_fish_imaged_delay_days_before(tmp_path: Path) -> None:
    sim = SimSettings(start=START, fish_per_day=40, label_delay_days=3)
    generate(sim, tmp_path, START, START + timedelta(days=6))
    observations = read_observations(tmp_path)
    outcomes = read_outcomes(tmp_path)
    assert list(outcomes) == [START + timedelta(days=n) for n in range(3, 7)]
    for day, rows in outcomes.items():
        assert len(rows) == 40
        assert all(set(row) == {"fish_id", "condition_developed"} for row in rows)
        assert all(type(row["condition_developed"]) is bool for row in rows)
        assert {row["fish_id"] for row in rows} == fish_ids(observations[day - timedelta(days=3)])
    labels = [row["condition_developed"] for rows in outcomes.values() for row in rows]
    assert 0 < sum(labels) < len(labels)


def test_label_depends_on_treatment() -> None:
    sim = SimSettings(start=START, fish_per_day=3000, label_delay_days=0)
    treatment = {row["fish_id"]: row["treatment"] for row in observations_for_day(sim, START)}
    labels: dict[str, list[bool]] = {name: [] for name in ("control", "drug_a", "drug_b")}
    for row in outcomes_for_day(sim, START):
        labels[treatment[row["fish_id"]]].append(row["condition_developed"])
    rate = {name: sum(values) / len(values) for name, values in labels.items()}
    assert rate["drug_a"] > rate["control"] > rate["drug_b"]


def test_days_without_rows_are_empty_and_leave_no_folder(tmp_path: Path) -> None:
    assert observations_for_day(SIM, START - timedelta(days=1)) == []
    assert outcomes_for_day(SIM, START + timedelta(days=31)) == []
    assert write_day(SIM, "outcomes", START, tmp_path / "day=2025-04-05") == WrittenDay(0, 0, 0)
    assert not (tmp_path / "day=2025-04-05").exists()


def test_a_day_written_twice_is_identical_whatever_the_workers(tmp_path: Path) -> None:
    sim = SimSettings(start=START, fish_per_day=1001, images_per_fish=1)  # a full block and a partial one
    day = START + timedelta(days=2)
    one = write_day(sim, "observations", day, tmp_path / "one", workers=1)
    two = write_day(sim, "observations", day, tmp_path / "two", workers=2)
    assert one == two and one.files == one.rows == 1001
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two") == {
        f"{row['image_id']}.json": encode_line(row) for row in observations_for_day(sim, day)
    }
    labels_day = day + timedelta(days=sim.label_delay_days)
    write_day(sim, "outcomes", labels_day, tmp_path / "labels-one")
    write_day(sim, "outcomes", labels_day, tmp_path / "labels-two")
    assert tree_bytes(tmp_path / "labels-one") == tree_bytes(tmp_path / "labels-two")


def test_a_different_seed_gives_different_data(tmp_path: Path) -> None:
    other = SimSettings(start=START, seed=7)
    write_day(SIM, "observations", START, tmp_path / "a")
    write_day(other, "observations", START, tmp_path / "b")
    assert tree_bytes(tmp_path / "a") != tree_bytes(tmp_path / "b")
    labels_day = START + timedelta(days=32)
    assert outcomes_for_day(SIM, labels_day) != outcomes_for_day(other, labels_day)


def test_rewriting_a_day_replaces_its_files(tmp_path: Path) -> None:
    dest = tmp_path / "day=2025-04-05"
    write_day(SimSettings(start=START, seed=7), "observations", START, dest)
    write_day(SIM, "observations", START, dest)
    fewer = SimSettings(start=START, fish_per_day=2)
    write_day(fewer, "observations", START, dest)
    expected = {f"{row['image_id']}.json": encode_line(row) for row in observations_for_day(fewer, START)}
    assert tree_bytes(dest) == expected and len(expected) == 6


def test_settings_from_env_name_the_bad_variable(sim_env: pytest.MonkeyPatch) -> None:
    sim_env.setenv("ZFISH_FISH_PER_DAY", "7")
    assert SimSettings.from_env() == SimSettings(start=START, fish_per_day=7)
    sim_env.setenv("ZFISH_LABEL_DELAY_DAYS", "-1")
    with pytest.raises(ValueError, match="ZFISH_LABEL_DELAY_DAYS='-1'"):
        SimSettings.from_env()
    with pytest.raises(ValueError, match="images_per_fish=0"):
        SimSettings(start=START, images_per_fish=0)


def test_cli_generate_writes_the_layout(
    tmp_path: Path, sim_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "--out", str(tmp_path), "--start", "2025-05-06", "--end", "2025-05-07"]
    assert main([*argv, "--fish-per-day", "2", "--seed", "1", "--workers", "1"]) == 0
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/day=*")) == [
        "observations/day=2025-05-06",
        "observations/day=2025-05-07",
        "outcomes/day=2025-05-07",
    ]
    assert sum(map(len, read_observations(tmp_path).values())) == 12
    assert len(read_outcomes(tmp_path)[date(2025, 5, 7)]) == 2
    assert re.search(r"observations\s+12\b", capsys.readouterr().out)


def test_cli_rejects_a_bad_day_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--out", str(tmp_path), "--start", "2025-13-01", "--end", "2025-05-07"])
    assert exit_.value.code == 2
    assert "2025-13-01" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
