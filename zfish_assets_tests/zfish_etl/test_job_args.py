"""The job's arguments on their way to the engine (no Spark).

Any JobArgs a Glue run is started with (`glue_arguments`, Glue's `--field value`) parses back to
itself in the job (`parse_args`), among the arguments that are not the job's (Glue's own, the
engine's run key); a choice outside its domain is refused naming it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glue_scripts.zfish_etl.days import FIRST_DAY, LAST_DAY
from glue_scripts.zfish_etl.job_args import LONGEST_WAIT_S, JobArgs, parse_args

# Values as a catalog, a lake or a local server spells them: never starting with "-" (Glue's
# getResolvedOptions, like argparse, would read such a value as an option).
VALUE = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_./:=@-]{0,40}", fullmatch=True)
OPTIONAL = st.one_of(st.just(""), VALUE)
DAY = st.dates(FIRST_DAY, LAST_DAY).map(lambda d: d.isoformat())


@st.composite
def job_args(draw) -> JobArgs:
    return JobArgs(
        first_day=draw(DAY), last_day=draw(DAY), database=draw(VALUE), observations_table=draw(VALUE),
        outcomes_table=draw(VALUE), target_path=draw(VALUE), target_table=draw(VALUE),
        catalog=draw(st.sampled_from(["glue", "file"])), catalog_dir=draw(OPTIONAL),
        join_mode=draw(st.sampled_from(["incremental", "full"])), aws_endpoint_url=draw(OPTIONAL),
        aws_region=draw(OPTIONAL), writer=draw(OPTIONAL),
        writer_wait_s=draw(st.floats(min_value=0, max_value=LONGEST_WAIT_S)),
    )


@given(job_args(), st.dictionaries(st.sampled_from(["--datalake-formats", "--zfish-run-key", "--job-language",
                                                    "--dagster-pipes-context", "--dagster-pipes-messages"]),
                                   VALUE, max_size=5))
def test_the_arguments_a_glue_run_gets_parse_back_to_the_engines(args, others):
    arguments = {**others, **args.glue_arguments()}
    assert all(name.startswith("--") and value for name, value in arguments.items())
    assert parse_args(["joined_fish_data.py", *[item for pair in arguments.items() for item in pair]]) == args


def test_a_choice_outside_its_domain_is_refused_naming_it():
    args = JobArgs(first_day="2025-05-01", last_day="2025-05-02", database="db", observations_table="observations",
                   outcomes_table="outcomes", target_path="file:///t", target_table="joined_fish_data")
    with pytest.raises(ValueError, match=r"join_mode='partial' is not one of incremental, full"):
        replace(args, join_mode="partial")
    with pytest.raises(ValueError, match=r"catalog='hive' is not one of glue, file"):
        replace(args, catalog="hive")
    for wait in ("inf", "nan", "1e300", str(LONGEST_WAIT_S + 1), "-1"):  # a wait no clock ends, or none
        with pytest.raises(ValueError, match=rf"^writer_wait_s='{wait}' must be from 0 to {LONGEST_WAIT_S} seconds$"):
            replace(args, writer_wait_s=wait)
