"""`zfish check`: its exit statuses, its JUnit XML against the run Dagster recorded, real damage failing it.

The walkthrough's 36 days are landed, crawled and joined once per module and restored per test; the
command runs as `main([...])` (a console script's whole path: parsing, definitions, the run on the
instance in DAGSTER_HOME), once as the installed `zfish` script for the usage errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from zfish_assets.tools.cli import main
from zfish_assets_tests.support.scenario import keep_as_template, restore

LAKE = Path("lake") / "use-cases" / "fish-demo"


@pytest.fixture(scope="module")
def joined_template(walkthrough_template, data_dir_path, tmp_path_factory):
    """The walkthrough landed, crawled and joined over 2025-04-05..2025-05-10 (60 rows), kept aside."""
    from zfish_assets.definitions import build_definitions
    from zfish_assets.tools.runs import join_range

    restore(walkthrough_template, data_dir_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZFISH_DATA_DIR", str(data_dir_path))
        with DagsterInstance.ephemeral() as instance:
            assert join_range(build_definitions(), instance, "2025-04-05", "2025-05-10").success
    return keep_as_template(data_dir_path, tmp_path_factory, "joined")


@pytest.fixture
def joined(joined_template, data_dir):
    return restore(joined_template, data_dir)


def junit_cases(path: Path) -> dict[str, ET.Element]:
    """asset/check -> its <testcase>, parsed from the file."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {f"{case.get('classname')}/{case.get('name')}": case for case in root.iter("testcase")}


def junit_property(path: Path, name: str) -> set[str]:
    return {p.get("value") for p in ET.parse(path).getroot().iter("property") if p.get("name") == name}


def recorded_evaluations(data_dir: Path, run_id: str) -> dict[str, dict]:
    """asset/check -> the evaluation the instance in DAGSTER_HOME recorded for the run (what the UI shows)."""
    with DagsterInstance.from_config(str(data_dir / "dagster")) as instance:
        run = instance.get_run_by_id(run_id)
        assert run.job_name == "checks_on_demand" and run.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
        out = {}
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data
            out[f"{evaluation.asset_key.to_user_string()}/{evaluation.check_name}"] = {
                "passed": evaluation.passed, "description": evaluation.description,
                "metadata": {k: v.value for k, v in evaluation.metadata.items()}}
        return out


def outcome(case: ET.Element) -> str:
    return "failure" if case.find("failure") is not None else "error" if case.find("error") is not None else "pass"


def test_passing_checks_exit_0_and_the_junit_file_is_the_run_the_instance_recorded(joined, tmp_path, capsys):
    junit = tmp_path / "all.xml"
    assert main(["check", "--all", "--junit", str(junit)]) == 0
    printed = capsys.readouterr().out
    cases = junit_cases(junit)
    (run_id,) = junit_property(junit, "dagster_run_id")
    recorded = recorded_evaluations(joined, run_id)
    # Every check of the crawled tables and the joined table ran; the training set has no export yet.
    assert set(cases) == set(recorded) and len(cases) == 15  # 5 per table, column_schema_change included
    assert {name.split("/")[0] for name in cases} == {"observations", "outcomes", "joined_fish_data"}
    assert all(outcome(cases[name]) == "pass" and recorded[name]["passed"] for name in cases)
    assert all(f"{name} " in printed for name in cases)
    # Expected vs actual, computed from the raw files: observations whose fish has a label.
    raw = joined / LAKE
    labeled = {json.loads(line)["fish_id"] for f in raw.glob("outcomes/day=*/*.json") for line in f.read_text().splitlines()}
    images = [json.loads(f.read_text()) for f in raw.glob("observations/day=*/*.json")]
    expected = sum(image["fish_id"] in labeled for image in images)
    assert expected == 60
    assert recorded["joined_fish_data/labeled_rows"]["metadata"]["actual_rows"] == expected
    assert f"{expected} labeled rows" in cases["joined_fish_data/labeled_rows"].find("system-out").text

    # One day: the checks read that day only (its registered files and rows).
    day = tmp_path / "day.xml"
    assert main(["check", "--day", "2025-05-09", "--junit", str(day)]) == 0
    (run_id,) = junit_property(day, "dagster_run_id")
    rows = recorded_evaluations(joined, run_id)["observations/rows_match_landed"]["metadata"]
    assert (rows["days_checked"], rows["rows_counted"]) == (1, len(list(raw.glob("observations/day=2025-05-09/*.json"))))

    # Once a training set exists, its checks run too.
    from zfish_assets.definitions import build_definitions
    from zfish_assets.tools.instance import local_instance
    from zfish_assets.tools.runs import materialize_training

    with local_instance() as instance:
        assert materialize_training(build_definitions(), instance).success
    assert main(["check", "--all", "--junit", str(junit)]) == 0
    training = {name for name in junit_cases(junit) if name.startswith("training_set/")}
    assert training == {"training_set/fish_in_one_split", "training_set/rows_match_snapshot",
                        "training_set/manifest_matches_files"}


def test_a_day_whose_lake_files_are_deleted_fails_blocking_checks_with_exit_1(joined, tmp_path, capsys):
    # 2025-04-06's fish are labeled: its images are in the joined table, and now gone from the lake.
    folder = joined / LAKE / "observations" / "day=2025-04-06"
    landed = len(list(folder.glob("*.json")))
    shutil.rmtree(folder)
    junit = tmp_path / "range.xml"
    assert main(["check", "--range", "2025-04-05..2025-04-07", "--junit", str(junit)]) == 1
    printed = capsys.readouterr().out
    cases = junit_cases(junit)
    (run_id,) = junit_property(junit, "dagster_run_id")
    recorded = recorded_evaluations(joined, run_id)
    failed = {name for name, e in recorded.items() if not e["passed"]}
    # Queries read the day's accepted rows, which the crawl wrote and the partition points at: they still
    # answer with the last crawl's rows, and the lake check names the day whose folder is gone.
    assert failed == {"observations/partitions_match_lake"}
    assert {name for name, case in cases.items() if outcome(case) == "failure"} == failed
    assert all(cases[name].find("failure").get("type") == "blocking" for name in failed)
    message = cases["observations/partitions_match_lake"].find("failure").get("message")
    assert "registered days with no folder: 2025-04-06" in message
    assert recorded["observations/rows_match_landed"]["passed"] and recorded["joined_fish_data/labeled_rows"]["passed"]
    assert landed and "FAIL" in printed and "1 blocking: FAILED" in printed
    # The damage is outside another day's scope: that day's checks pass.
    assert main(["check", "--day", "2025-05-10"]) == 0

    # A file no JSON reader can parse, after the crawl: queries keep reading the accepted rows (nothing
    # raises), and the lake check fails naming the change.
    broken = sorted((joined / LAKE / "observations" / "day=2025-05-10").glob("*.json"))[0]
    broken.write_text("{oops\n")
    assert main(["check", "--day", "2025-05-10", "--junit", str(junit)]) == 1
    cases = junit_cases(junit)
    assert not {name for name, case in cases.items() if outcome(case) == "error"}
    assert "changed since the crawl" in cases["observations/partitions_match_lake"].find("failure").get("message")


def test_nothing_to_check_exits_3_saying_so(data_dir, walkthrough_template, capsys):
    assert main(["check", "--all"]) == 3
    assert "nothing to check yet for every day" in capsys.readouterr().err
    restore(walkthrough_template, data_dir)
    # 2025-05-11 is a partition (the clock's evening) that nothing landed yet.
    assert main(["check", "--day", "2025-05-11"]) == 3
    err = capsys.readouterr().err
    assert "nothing to check yet for 2025-05-11" in err and "days present: 2025-04-05..2025-05-10" in err


@pytest.mark.parametrize("arguments, message", [
    (["--day", "2025-02-30"], "day='2025-02-30' is no date: February 2025 has 28 days"),
    (["--day", "2025-02-29"], "day='2025-02-29' is no date: February 2025 has 28 days"),
    (["--day", "2025-5-1"], "day='2025-5-1' is not a day in YYYY-MM-DD form"),
    (["--range", "2025-04-05..9999-12-31"], "range end='9999-12-31' is outside the days zfish handles"),
    (["--range", "2025-05-10..2025-04-05"], "is reversed: 2025-04-05 is before 2025-05-10"),
    (["--range", "2025-04-05"], "is not FIRST..LAST"),
    (["--range", "2025-04-05..2025-04-06..2025-04-07"], "is not FIRST..LAST"),
    (["--range", "2025-04-05..tomorrow"], "range end='tomorrow' is not a day"),
    (["--day", "2025-01-01"], "2025-01-01 is not a partition: days run 2025-04-05..2025-05-11"),
    (["--range", "2025-05-01..2025-06-01"], "21 days (2025-05-12..2025-06-01) are not partitions"),
    ([], "one of the arguments --day --range --all is required"),
    (["--all", "--day", "2025-04-05"], "not allowed with argument"),
])
def test_usage_errors_exit_2_naming_the_value(data_dir, arguments, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", *arguments])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_the_installed_script_exits_2_on_a_reversed_range(data_dir):
    result = subprocess.run([str(Path(sys.executable).parent / "zfish"), "check", "--range", "2025-05-10..2025-04-05"],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert "--range: range '2025-05-10..2025-04-05' is reversed" in result.stderr


def test_a_range_reaching_days_without_data_names_them(data_dir, walkthrough_template, capsys):
    """Checks over days that hold nothing pass over nothing: the command says which days those are."""
    restore(walkthrough_template, data_dir)  # 2025-04-05..2025-05-10 landed and crawled
    main(["check", "--range", "2025-05-09..2025-05-11"])
    err = capsys.readouterr().err
    assert "1 of the 3 days hold no data (nothing landed or registered): 2025-05-11" in err, err
