"""The job's arguments on their way to the engine, and the Hudi IO manager's input types (no Spark).

Any JobArgs a Glue run is started with (`glue_arguments`, Glue's `--field value`) parses back to
itself in the job (`parse_args`), among the arguments that are not the job's (Glue's own, the
engine's run key); a choice outside its domain is refused naming it. The IO manager loads what the
input declares, and refuses (naming the types it has) what it cannot load.
"""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pytest
from dagster import AssetSpec, asset, materialize
from hypothesis import given
from hypothesis import strategies as st

from glue_scripts.zfish_etl.job_args import JobArgs, parse_args
from zfish_assets.backends.hudi_reader import HudiSnapshot
from zfish_assets.io_managers.hudi_io_manager import HudiIOManager
from zfish_assets.dagster_names import JOINED
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.engine import LocalSparkEngine
from zfish_assets.resources.lake import LocalLake

# Values as a catalog, a lake or a local server spells them: never starting with "-" (Glue's
# getResolvedOptions, like argparse, would read such a value as an option).
VALUE = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_./:=@-]{0,40}", fullmatch=True)
OPTIONAL = st.one_of(st.just(""), VALUE)
DAY = st.dates().map(lambda d: d.isoformat())


@st.composite
def job_args(draw) -> JobArgs:
    return JobArgs(
        first_day=draw(DAY), last_day=draw(DAY), database=draw(VALUE), observations_table=draw(VALUE),
        outcomes_table=draw(VALUE), target_path=draw(VALUE), target_table=draw(VALUE),
        catalog=draw(st.sampled_from(["glue", "file"])), catalog_dir=draw(OPTIONAL),
        join_mode=draw(st.sampled_from(["incremental", "full"])), aws_endpoint_url=draw(OPTIONAL),
        aws_region=draw(OPTIONAL), writer=draw(OPTIONAL),
        writer_wait_s=draw(st.floats(min_value=0, max_value=1e6, allow_infinity=False)),
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


def test_the_io_manager_loads_what_the_input_declares(tmp_path):
    """A consumer of joined_fish_data gets the type it declares (Arrow when it declares none); before the
    first write, no rows. A type the IO manager cannot load fails the run, naming those it can."""
    manager = HudiIOManager(engine=LocalSparkEngine(), catalog=LocalCatalog(root=str(tmp_path / "catalog")),
                            lake=LocalLake(root=str(tmp_path / "lake")))
    joined = AssetSpec(JOINED).with_io_manager_key("hudi_io_manager")
    loaded = {}

    @asset
    def untyped(joined_fish_data) -> None:
        loaded["untyped"] = joined_fish_data

    @asset
    def arrow(joined_fish_data: pa.Table) -> None:
        loaded["arrow"] = joined_fish_data

    @asset
    def snapshot(joined_fish_data: HudiSnapshot) -> None:
        loaded["snapshot"] = joined_fish_data

    @asset
    def unknown(joined_fish_data: dict) -> None:
        loaded["unknown"] = joined_fish_data

    resources = {"hudi_io_manager": manager}
    assert materialize([joined, untyped, arrow, snapshot], resources=resources).success
    assert {k: (type(v), getattr(v, "num_rows", None)) for k, v in loaded.items() if k != "snapshot"} == {
        "untyped": (pa.Table, 0), "arrow": (pa.Table, 0)}
    assert isinstance(loaded["snapshot"], HudiSnapshot) and loaded["snapshot"].uri == manager.table_uri(JOINED)
    assert loaded["snapshot"].days is None  # an unpartitioned consumer: the whole table
    failed = materialize([joined, unknown], resources=resources, raise_on_error=False)
    assert not failed.success and "unknown" not in loaded
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "joined_fish_data loads as one of" in message and "HudiSnapshot" in message and "not <class 'dict'>" in message
