"""Every setting and argument has a domain, bounds included, checked where the value enters: a number, a day
or a clock that parses but that the code after it cannot hold (a date past `date.max`, a sleep no clock ends,
a window of millions of days) is refused in one line naming the variable or the flag, and a text that ends in
a newline is never taken for a name (a regular expression's `$` matches before a final newline)."""

from __future__ import annotations

import ast
import os
import re
import string
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glue_scripts.zfish_etl.contract import OBSERVATIONS, RESERVED_COLUMNS, TIMESTAMP_RANGE
from zfish_assets import settings
from zfish_assets.tools.cli import main

ROOT = settings.REPO_ROOT
FIRST, LAST = TIMESTAMP_RANGE[0].date(), TIMESTAMP_RANGE[1].date() - timedelta(days=1)
# Texts past any sensible domain: huge integers and floats, the calendar's ends, a JVM size no machine has.
PAST_EVERY_DOMAIN = ["9" * 40, "1e308", "-1e308", "99999999999", "9999-12-31", "0001-01-01", "9999-12-31T23:59:59Z",
                     "0001-01-01T00:00:00+05:00", "99999999999999999999g", "1-99999999", "604801"]


def _held(value: object) -> bool:
    """Whether a parsed value is one the code after the entry holds: numbers well inside 64 bits and at most a
    week of seconds for a float, days and instants inside the contract's timestamps (the rules restated here)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, Path)):
        return True
    if isinstance(value, int):
        return abs(value) < 2**63
    if isinstance(value, float):
        return 0 <= value <= 7 * 24 * 3600
    if isinstance(value, datetime):
        return TIMESTAMP_RANGE[0] <= value < TIMESTAMP_RANGE[1]
    if isinstance(value, date):
        return FIRST <= value <= LAST
    return True  # a choice (an Enum member)


@pytest.mark.parametrize("setting", settings.SETTINGS, ids=lambda s: s.name)
def test_no_setting_takes_a_value_past_its_domain(setting):
    for text in PAST_EVERY_DOMAIN:
        try:
            value = setting.parse(text)
        except ValueError as exc:
            assert str(exc).startswith(f"{setting.name}={text!r} is ") and "\n" not in str(exc), exc
            continue
        assert _held(value), f"{setting.name}={text!r} was taken as {value!r}"
    for text in ("1-99999999", "0-3661"):  # a spread's upper end is a number of days too
        if setting is settings.LABEL_DELAY_SPREAD:
            with pytest.raises(ValueError, match=f"^ZFISH_LABEL_DELAY_SPREAD={text!r} is not"):
                setting.parse(text)


@pytest.mark.parametrize("setting", [s for s in settings.SETTINGS if s.default.strip()], ids=lambda s: s.name)
def test_a_value_ending_in_a_newline_is_its_value_or_refused_never_a_name_with_a_newline(setting):
    """A variable read from a file (`export X=$(cat f)` keeps no newline, `.env` loaders may) with a trailing
    newline: the value without it, or a refusal, never a database, prefix or name holding the newline."""
    try:
        value = setting.parse(setting.default + "\n")
    except ValueError as exc:
        assert str(exc).startswith(f"{setting.name}=") and "\n" not in str(exc).split(" is ")[-1]
        return
    assert value == setting.parse(setting.default) and "\n" not in str(value)


@given(st.integers(-5, 5), st.integers(-5, 5), st.integers(-20, 20) | st.text(string.digits + "-_ x", max_size=5))
def test_an_integer_kind_accepts_exactly_the_integers_within_its_bounds(low, span, text):
    parser = settings.integer(low, low + abs(span))
    setting = settings.Setting("ZFISH_TEST_N", "0", parser, "a test")
    text = str(text)
    try:
        expected = int(text)
    except ValueError:
        expected = None
    if expected is not None and low <= expected <= low + abs(span):
        assert setting.parse(text) == expected
    else:
        with pytest.raises(ValueError, match=rf"^ZFISH_TEST_N={re.escape(repr(text))} is not an integer from "):
            setting.parse(text)


@pytest.mark.parametrize("variable, value, message", [
    ("ZFISH_CLOCK", "9999-12-31", "ZFISH_CLOCK='9999-12-31' is outside the days zfish handles"),
    ("ZFISH_CLOCK", "2262-04-10T23:00:00-05:00", "is outside the days zfish handles"),
    ("ZFISH_SIM_START", "2025-02-29", "ZFISH_SIM_START='2025-02-29' is no date: February 2025 has 28 days"),
    ("ZFISH_LABEL_HORIZON_DAYS", "99999999999", "ZFISH_LABEL_HORIZON_DAYS='99999999999' is not an integer from 1 to"),
    ("ZFISH_CRAWLER_TIMEOUT_S", "1e300", "ZFISH_CRAWLER_TIMEOUT_S='1e300' is not a number of seconds from 0 to"),
    ("ZFISH_DATABASE", "zebra_fish_demo\n", "ZFISH_DATABASE='zebra_fish_demo\\n' is not a plain lower-case name"),
])
def test_zfish_check_refuses_a_setting_past_its_domain_in_one_line(data_dir, monkeypatch, capsys, variable, value,
                                                                  message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        main(["check", "--all"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err and "Traceback" not in err, err


@pytest.mark.parametrize("flag, value", [("--fish-per-day", "99999999999"), ("--images-per-fish", "0"),
                                         ("--label-delay-days", "99999999"), ("--workers", "100000"),
                                         ("--seed", "9" * 30), ("--end", "9999-12-31")])
def test_zfish_generate_refuses_a_flag_past_its_domain_before_writing(tmp_path, capsys, flag, value):
    args = {"--out": str(tmp_path / "out"), "--start": "2025-04-05", "--end": "2025-04-06", flag: value}
    with pytest.raises(SystemExit) as exited:
        main(["generate", *[item for pair in args.items() for item in pair]])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and f"argument {flag}: " in err and repr(value) in err, err
    assert not (tmp_path / "out").exists()


def test_at_the_domains_edges_the_commands_run(data_dir, monkeypatch, tmp_path, capsys):
    """The last day and the longest window and delay the domains allow: no overflow in the definitions, the
    check's partitions or the simulator."""
    for name, value in {"ZFISH_CLOCK": f"{LAST}T23:59:59Z", "ZFISH_SIM_START": str(LAST - timedelta(days=3)),
                        "ZFISH_LABEL_HORIZON_DAYS": "3660", "ZFISH_LABEL_DELAY_DAYS": "3660"}.items():
        monkeypatch.setenv(name, value)
    assert main(["check", "--all"]) == 3  # nothing landed: "nothing to check yet"
    out = tmp_path / "out"
    assert main(["generate", "--out", str(out), "--start", str(LAST - timedelta(days=1)), "--end", str(LAST)]) == 0
    assert sorted(p.name for p in (out / "observations").iterdir()) == [f"day={LAST - timedelta(days=1)}",
                                                                        f"day={LAST}"]


def _patterns(path: Path) -> list[tuple[int, str, str]]:
    """The literal patterns given to `re.compile/match/search/fullmatch` in a module: line, pattern, flags given."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
                and ast.unparse(node.func) in ("re.compile", "re.match", "re.search", "re.fullmatch")):
            parts = [n.value for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            flags = " ".join(ast.unparse(a) for a in [*node.args[1:], *(k.value for k in node.keywords)])
            found.append((node.lineno, "".join(parts), flags))
    return found


CODE = sorted([*(ROOT / "zfish_assets").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py")])


def test_no_pattern_ends_at_dollar_which_lets_a_final_newline_through():
    """`$` matches before a trailing newline: `^[a-z_]+$` takes "zebra\\n". Patterns end with `\\Z`."""
    dollars = [f"{p.relative_to(ROOT)}:{line}" for p in CODE for line, pattern, _ in _patterns(p)
               if re.search(r"(?<!\\)\$(\)|\||$)", pattern)]
    assert not dollars, f"patterns anchored with $ (use \\Z): {dollars}"


def test_a_pattern_with_a_character_class_escape_or_ignoring_case_matches_ascii_only():
    """`\\d` and `\\w` match any script's digits and letters (`０００…` as an account id, `rôle` as a role name), and
    IGNORECASE matches the Kelvin sign for `k`: every such pattern is compiled with re.ASCII."""
    unicode_wide = [f"{p.relative_to(ROOT)}:{line}" for p in CODE for line, pattern, flags in _patterns(p)
                    if (re.search(r"\\[dDwWsSb]", pattern) or "IGNORECASE" in flags) and "ASCII" not in flags]
    assert not unicode_wide, f"patterns matching beyond ASCII (add re.ASCII): {unicode_wide}"


@pytest.mark.parametrize("setting, value", [
    (settings.GLUE_ROLE_ARN, "arn:aws:iam::\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff11:role/x"),
    (settings.GLUE_ROLE_ARN, "arn:aws:iam::000000000001:role/r\u00f4le"),
    (settings.KMS_KEY_ARN, "arn:aws:kms:us-east-1:\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0661:key/k"),
    (settings.SPARK_MASTER, "local[\u0662]"),
    (settings.SPARK_DRIVER_MEMORY, "4\u212a"),  # the Kelvin sign, which IGNORECASE takes for k
])
def test_a_value_with_digits_or_letters_of_another_script_is_refused(setting, value):
    with pytest.raises(ValueError, match=f"^{setting.name}="):
        setting.parse(value)


@given(st.text(alphabet=string.ascii_letters[20:30] + string.digits[:3] + "_-\n é", min_size=1, max_size=8))
def test_a_new_struct_member_becomes_a_column_exactly_when_catalogs_take_its_name(member):
    """An open struct's new member (schema evolution from a lab's upload) becomes a column only with a name Glue
    and Hive take as it is: a lower-case letter, then lower-case letters, digits and `_`, 63 at most."""
    takes = (member[0] in string.ascii_lowercase and len(member) <= 63
             and all(c in string.ascii_lowercase + string.digits + "_" for c in member)
             and member not in RESERVED_COLUMNS)
    grown = dict(OBSERVATIONS.evolve({"genetic_markers": [member]}).columns())["genetic_markers"]
    assert (f",{member}:double>" in grown) is takes
    assert bool(OBSERVATIONS.refused_members([f"genetic_markers.{member}"])) is (not takes)


def test_the_installed_script_refuses_a_huge_clock_in_one_line(data_dir):
    result = subprocess.run([str(Path(sys.executable).parent / "zfish"), "check", "--all"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "ZFISH_CLOCK": "9999-12-31"})
    assert result.returncode == 2 and "OverflowError" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("zfish check: error: ZFISH_CLOCK='9999-12-31' is outside")
