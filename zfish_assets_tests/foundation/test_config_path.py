"""One configuration path: resources get their values from `deployments.py` only. No resource module
reads a setting (it may name one's static facts: its default, description or variable), and the
resources a deployment builds hold the settings, while one built directly holds what it is given."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from zfish_assets import settings

RESOURCES = Path(settings.REPO_ROOT, "zfish_assets", "resources")
STATIC = {"default", "description", "name"}  # a setting's facts in the table, not its value


def settings_reads(path: Path, root: Path = settings.REPO_ROOT) -> list[str]:
    """Each use of the `settings` module in `path` other than `settings.<SETTING>.<static fact>`."""
    tree = ast.parse(path.read_text(), str(path))
    allowed = {id(node.value.value) for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr in STATIC and isinstance(node.value, ast.Attribute)
               and isinstance(node.value.value, ast.Name) and node.value.value.id == "settings"
               and node.value.attr.isupper()}
    return [f"{path.relative_to(root)}:{node.lineno} {ast.unparse(parent)}"
            for parent in ast.walk(tree) for node in ast.iter_child_nodes(parent)
            if isinstance(node, ast.Name) and node.id == "settings" and id(node) not in allowed
            and isinstance(parent, ast.Attribute)]


def test_no_resource_reads_a_setting():
    reads = [read for path in sorted(RESOURCES.glob("*.py")) for read in settings_reads(path)]
    assert not reads, "resources read settings (give the value in deployments.py instead):\n" + "\n".join(reads)


def test_the_rule_sees_a_read_and_lets_a_static_fact_pass(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("a = settings.DATABASE.default\nb = settings.database()\nc = settings.LAKE_PREFIX.get()\n")
    assert [line.split(" ", 1)[1] for line in settings_reads(probe, tmp_path)] == \
        ["settings.database", "settings.LAKE_PREFIX"]


@pytest.fixture
def configured(monkeypatch, tmp_path):
    values = {"ZFISH_DATA_DIR": str(tmp_path), "ZFISH_LAKE_PREFIX": "labs/one", "ZFISH_DATABASE": "lab_db",
              "ZFISH_SPARK_MASTER": "local[1]", "ZFISH_FISH_PER_DAY": "7", "ZFISH_SEED": "3",
              "ZFISH_SIM_START": "2025-01-02", "ZFISH_LABEL_DELAY_SPREAD": "7-35"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_a_deployments_resources_hold_the_settings(configured, tmp_path):
    from zfish_assets.deployments import resources_for

    resources = resources_for("local")
    lake, catalog, simulator = resources["lake"], resources["catalog"], resources["simulator"]
    assert (lake.root, lake.prefix) == (str(tmp_path / "lake"), "labs/one")
    assert (catalog.root, catalog.database) == (str(tmp_path / "catalog"), "lab_db")
    assert resources["hudi_io_manager"].engine.master == "local[1]"
    assert (simulator.start, simulator.fish_per_day, simulator.seed, simulator.label_delay_spread) == \
        ("2025-01-02", 7, 3, "7-35")


def test_a_resource_built_directly_holds_what_it_is_given_not_the_environment(configured, tmp_path):
    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.resources.engine import LocalSparkEngine
    from zfish_assets.resources.lake import LocalLake
    from zfish_assets.resources.simulator import SimulatorResource

    assert LocalLake(root=str(tmp_path)).prefix == "use-cases/fish-demo"
    assert LocalCatalog(root=str(tmp_path)).database == "zebra_fish_demo"
    assert LocalSparkEngine().master == "local[2]"
    assert (SimulatorResource().fish_per_day, SimulatorResource().start) == (5, "2025-04-05")
