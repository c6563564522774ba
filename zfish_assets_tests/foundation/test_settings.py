"""The configuration layer: every `ZFISH_*` variable declared once in settings.py, read nowhere else,
documented in docs/configuration.md, and each parser accepting exactly its domain."""

from __future__ import annotations

import ast
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfish_assets import settings

ROOT = settings.REPO_ROOT
CODE = sorted([*(ROOT / "zfish_assets").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py")])
REFERENCE = ROOT / "docs" / "configuration.md"  # the settings' reference: every declared variable listed
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
VARIABLE = re.compile(r"\bZFISH_[A-Z0-9_]*[A-Z0-9]\b")
NOT_VARIABLES = {"ZFISH_RESULT"}  # the job's result line on stdout, not a setting
# The Trino test harness's own, read by it (zfish_assets_tests/resources/trino.py, bin/fetch-trino): not zfish's settings.
NOT_VARIABLES |= {"ZFISH_TRINO_JAVA_HOME", "ZFISH_TRINO_VERSION", "ZFISH_TRINO_DIR"}


def test_every_variable_named_anywhere_is_declared_and_documented():
    declared = {s.name for s in settings.SETTINGS}
    assert len(declared) == len(settings.SETTINGS), "a variable declared twice"
    texts = {p: p.read_text() for p in [*CODE, *PAGES, ROOT / "Makefile", ROOT / "bin" / "fetch-jars"]}
    named = {(m, p.relative_to(ROOT).as_posix()) for p, t in texts.items() for m in VARIABLE.findall(t)}
    undeclared = sorted((m, p) for m, p in named if m not in declared | NOT_VARIABLES)
    assert not undeclared, f"variables named but not declared in settings.py: {undeclared}"
    undocumented = sorted(declared - set(VARIABLE.findall(texts[REFERENCE])))
    assert not undocumented, f"settings missing from {REFERENCE.relative_to(ROOT)}: {undocumented}"


def _reads_environment(node: ast.AST) -> bool:
    """`os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)` reading a `ZFISH_*` name given as a literal."""
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        key = node.slice
    elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv", "os.environ.pop"):
        key = node.args[0] if node.args else None
    else:
        return False
    return isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith("ZFISH_")


def test_no_module_but_settings_reads_a_zfish_variable():
    readers = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in CODE if p != ROOT / "zfish_assets" / "settings.py"
               for n in ast.walk(ast.parse(p.read_text())) if _reads_environment(n)]
    assert not readers, f"read ZFISH_* outside settings.py: {readers}"
    # The Glue job's own arguments are its interface, not settings; it must not read zfish's variables either.


@given(st.text(alphabet=string.digits + "-+. x", max_size=6), st.integers(-2, 2))
def test_an_integer_setting_accepts_exactly_the_integers_at_or_above_its_minimum(text, minimum):
    setting = settings.Setting("ZFISH_TEST_N", "0", settings.integer(minimum), "a test")
    try:
        expected = int(text)
    except ValueError:
        expected = None
    if expected is None or expected < minimum:
        with pytest.raises(ValueError, match=rf"^ZFISH_TEST_N={re.escape(repr(text))} is not an integer >= {minimum}$"):
            setting.parse(text)
    else:
        assert setting.parse(text) == expected


@given(st.text(max_size=12))
def test_a_choice_accepts_exactly_its_literal_values(text):
    allowed = ("incremental", "full")
    if text.strip() in allowed:
        assert settings.JOIN_MODE.parse(text) == text.strip()
    else:
        with pytest.raises(ValueError, match="is not one of incremental, full$"):
            settings.JOIN_MODE.parse(text)


@given(st.text(max_size=8))
def test_a_flag_is_true_or_false_and_nothing_else(text):
    if text.strip().lower() in ("true", "false"):
        assert settings.SPARK_S3A.parse(text) is (text.strip().lower() == "true")
    else:
        with pytest.raises(ValueError, match="is not true or false$"):
            settings.SPARK_S3A.parse(text)


def test_unset_and_blank_mean_the_default_and_config_defers_a_set_value_to_run_time(monkeypatch):
    monkeypatch.setenv("ZFISH_LABEL_HORIZON_DAYS", "  ")
    assert settings.label_horizon_days() == 36
    monkeypatch.delenv("ZFISH_GLUE_JOB_NAME", raising=False)
    assert settings.GLUE_JOB_NAME.config() == "zfish-joined-fish-data"
    monkeypatch.setenv("ZFISH_GLUE_JOB_NAME", "other-job")
    assert settings.GLUE_JOB_NAME.config().env_var_name == "ZFISH_GLUE_JOB_NAME"


def test_the_data_dirs_recorded_clock_is_every_commands_clock(tmp_path, monkeypatch):
    """What `zfish demo` records in its data dir is "now" for every later command on it, unless
    ZFISH_CLOCK says otherwise; a data dir without one lives on the real clock."""
    from datetime import datetime, timezone

    from zfish_assets import settings

    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ZFISH_CLOCK", raising=False)
    assert not settings.simulated()
    monkeypatch.setenv("ZFISH_CLOCK", "2025-05-11T18:00:00Z")
    settings.record_clock()
    monkeypatch.delenv("ZFISH_CLOCK")
    assert settings.clock() == datetime(2025, 5, 11, 18, tzinfo=timezone.utc)
    monkeypatch.setenv("ZFISH_CLOCK", "2025-04-20T18:00:00Z")
    assert settings.clock() == datetime(2025, 4, 20, 18, tzinfo=timezone.utc)
    monkeypatch.delenv("ZFISH_CLOCK")
    (tmp_path / "data" / settings.CLOCK_FILE).write_text("yesterday\n")
    with pytest.raises(ValueError, match=r"ZFISH_CLOCK='yesterday'.*recorded in .*data/clock"):
        settings.clock()
