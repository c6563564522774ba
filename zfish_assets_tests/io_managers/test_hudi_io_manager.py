"""The Hudi IO manager's input types (no Spark): it loads what the input declares, and refuses (naming
the types it has) what it cannot load."""

from __future__ import annotations

import pyarrow as pa
from dagster import AssetSpec, asset, materialize

from zfish_assets.backends.hudi_reader import HudiSnapshot
from zfish_assets.io_managers.hudi_io_manager import HudiIOManager
from zfish_assets.dagster_names import JOINED
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.engine import LocalSparkEngine
from zfish_assets.resources.lake import LocalLake


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
