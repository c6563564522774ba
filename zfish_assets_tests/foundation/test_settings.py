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
    with pytest.raises(ValueError, match=r"the clock recorded in .*data/clock, 'yesterday', is not .*\(ZFISH_CLOCK unset\)"):
        settings.clock()


# Values that reach AWS: each refused by the rules of the service it reaches, in one line naming the variable.
ODD_VALUES = {
    "ZFISH_S3_BUCKET": ["s3://zfish-lake", "zfish-lake/", "arn:aws:s3:::zfish-lake", "Zfish-Lake", "bad_bucket!",
                        "ab", "zfish lake", "a..b", "192.168.1.1", "-lake", "lake-", "x" * 64, "xn--lake",
                        "lake-s3alias"],
    "ZFISH_AWS_ENDPOINT_URL": ["127.0.0.1:5055", "/tmp/moto", "http://", "ftp://127.0.0.1:5055",
                               "http://127.0.0.1:5055/some/path", "http://127.0.0.1:99999", "http://h:port",
                               "http://127.0.0.1:5055/?x=1"],
    "ZFISH_GLUE_ROLE_ARN": ["zfish-job", "arn:aws:iam::000000000000:role/", "arn:aws:iam::123:role/x",
                            "arn:aws:iam::000000000000:user/bob", "arn:aws:iam::000000000000:role/*",
                            "arn:aws:iam::000000000000:role/a b", "arn:aws:sts::000000000000:assumed-role/r/s"],
    "ZFISH_GLUE_JOB_NAME": ["*", "job?", "my job", "job/x", "j:x", "x" * 256],
    "ZFISH_ATHENA_WORKGROUP": ["*", "my wg", "wg/x", "x" * 129],
    "ZFISH_ATHENA_OUTPUT": ["s3://", "s3:///x/", "/tmp/results", "athena-results", "S3://b/x/", "s3://Bad_Bucket/x",
                            "s3://bucket/x*y/", "s3://bucket/a//c/", "https://b.s3.amazonaws.com/x/", "s3://bucket/../x"],
    "ZFISH_GLUE_TIMEOUT_S": ["inf", "1e309", "nan", "-5", "0", "59", "604801"],
    "ZFISH_GLUE_POLL_S": ["inf", "-1", "0", "0.0"],  # 0: a loop of GetJobRun calls without a pause
    "ZFISH_CRAWLER_POLL_S": ["0", "604801"],
    "ZFISH_KMS_KEY_ARN": ["arn:aws:kms:us-east-1:000000000000:alias/zfish", "alias/zfish",
                          "arn:aws:kms:us-east-1:000000000000:key/*"],
    "ZFISH_DATABASE": ["Zebra", "zebra-fish", "1db", "d" * 243],
    "ZFISH_SPARK_REMOTE": ["http://127.0.0.1:15002", "127.0.0.1:15002", "sc://", "sc://h:99999", "sc://h:1/x",
                           "Warm"],
}
GOOD_VALUES = {
    "ZFISH_S3_BUCKET": ["zfish-lake", "my.dotted.bucket", "abc", "a" * 63, " zfish-lake "],
    "ZFISH_AWS_ENDPOINT_URL": ["http://127.0.0.1:5055", "http://127.0.0.1:5055/", "https://s3.example.com",
                               "HTTP://localhost:4566"],
    "ZFISH_GLUE_ROLE_ARN": ["arn:aws:iam::000000000000:role/zfish-job", "arn:aws:iam::000000000000:role/path/to/r",
                            "arn:aws-cn:iam::000000000000:role/r+=,.@_-"],
    "ZFISH_GLUE_JOB_NAME": ["zfish-joined-fish-data", "Job_2.x"],
    "ZFISH_ATHENA_WORKGROUP": ["primary", "zfish.wg_1-a"],
    "ZFISH_ATHENA_OUTPUT": ["s3://athena-results", "s3://athena-results/", "s3://b-1/a/b=c/", "s3://b-1/a"],
    "ZFISH_GLUE_TIMEOUT_S": ["60", "7200", "604800", "90.5"],
    "ZFISH_KMS_KEY_ARN": ["arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
    "ZFISH_DATABASE": ["zebra_fish_demo", "_db1", "d" * 242],
    "ZFISH_SPARK_REMOTE": ["warm", "sc://127.0.0.1:15002/;x-zfish-token=abc", "sc://localhost"],
}


@pytest.mark.parametrize("variable, value", [(v, x) for v, values in ODD_VALUES.items() for x in values])
def test_a_value_aws_would_refuse_or_a_policy_would_widen_is_refused_naming_the_variable(variable, value):
    (setting,) = [s for s in settings.SETTINGS if s.name == variable]
    with pytest.raises(ValueError) as refused:
        setting.parse(value)
    message = str(refused.value)
    assert message.startswith(f"{variable}={value!r} is not ") and "\n" not in message, message


@pytest.mark.parametrize("variable, value", [(v, x) for v, values in GOOD_VALUES.items() for x in values])
def test_the_values_aws_takes_are_accepted(variable, value):
    (setting,) = [s for s in settings.SETTINGS if s.name == variable]
    if variable == "ZFISH_AWS_ENDPOINT_URL":  # as every client takes it: the scheme lower-case, no trailing `/`
        assert setting.parse(value) == value.strip().rstrip("/").replace("HTTP://", "http://")
    else:
        assert setting.parse(value) in (value.strip(), float(value) if variable.endswith("_S") else None)


def _s3_allows_bucket(name: str) -> bool:
    """S3's naming rules for general purpose buckets, as its documentation lists them, one by one."""
    allowed = set(string.ascii_lowercase + string.digits + ".-")
    ip = name.split(".")
    return (3 <= len(name) <= 63 and set(name) <= allowed and name[0].isalnum() and name[-1].isalnum()
            and ".." not in name and not (len(ip) == 4 and all(p.isdigit() for p in ip))
            and not any(name.startswith(p) for p in ("xn--", "sthree-", "amzn-s3-demo-"))
            and not any(name.endswith(s) for s in ("-s3alias", "--ol-s3", ".mrap", "--x-s3")))


@given(st.text(alphabet=string.ascii_letters[:6] + "AZ019.-_/: ", min_size=1, max_size=66))
def test_a_bucket_setting_accepts_exactly_the_names_s3_allows(name):
    if _s3_allows_bucket(name.strip()):
        assert settings.S3_BUCKET.parse(name) == name.strip()
    elif name.strip():
        with pytest.raises(ValueError, match=r"^ZFISH_S3_BUCKET=.* is not "):
            settings.S3_BUCKET.parse(name)


@pytest.mark.parametrize("variables, message", [
    ({"ZFISH_AWS_REGION": "us-east-1", "ZFISH_KMS_KEY_ARN": "arn:aws:kms:eu-west-1:000000000000:key/k1"},
     "ZFISH_KMS_KEY_ARN='arn:aws:kms:eu-west-1:000000000000:key/k1' is a key of region eu-west-1, but "
     "ZFISH_AWS_REGION='us-east-1'"),
    ({"ZFISH_AWS_REGION": "cn-north-1", "ZFISH_GLUE_ROLE_ARN": "arn:aws:iam::000000000000:role/r"},
     "ZFISH_GLUE_ROLE_ARN='arn:aws:iam::000000000000:role/r' is in partition aws, but ZFISH_AWS_REGION='cn-north-1' "
     "is in aws-cn"),
    ({"ZFISH_AWS_REGION": "us-east-1", "ZFISH_GLUE_ROLE_ARN": "arn:aws-us-gov:iam::000000000000:role/r"},
     "is in partition aws-us-gov, but ZFISH_AWS_REGION='us-east-1' is in aws"),
])
def test_arns_that_disagree_with_the_region_are_refused_naming_both(variables, message, monkeypatch):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as refused:
        settings.check_set()
    assert message in str(refused.value)


def test_arns_that_agree_with_the_region_pass(monkeypatch):
    for name, value in {"ZFISH_AWS_REGION": "cn-north-1", "ZFISH_GLUE_ROLE_ARN": "arn:aws-cn:iam::000000000000:role/r",
                        "ZFISH_KMS_KEY_ARN": "arn:aws-cn:kms:cn-north-1:000000000000:key/k1"}.items():
        monkeypatch.setenv(name, value)
    settings.check_set()


def test_a_refused_spark_connect_url_shows_its_secret_masked():
    with pytest.raises(ValueError) as refused:
        settings.SPARK_REMOTE.parse("sc://127.0.0.1:99999/;x-zfish-token=s3cr3t")
    assert "s3cr3t" not in str(refused.value) and "x-zfish-token=***" in str(refused.value)
