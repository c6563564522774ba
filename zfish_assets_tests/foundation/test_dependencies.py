"""Every library pyproject.toml declares is imported by the project's code (or is a command it runs), and the lock
files it is installed from carry each file's hash."""

from __future__ import annotations

import ast
import re
import tomllib

from zfish_assets import settings

ROOT = settings.REPO_ROOT
# Declared and not imported: why each is there.
NOT_IMPORTED = {"dagster-webserver": "`dagster dev` / `dg dev` serve the UI with it",
                "dagster-dg-cli": "the `dg` command ([tool.dg])",
                "pandas": "a pin for pyspark[connect]'s client (pyspark 3.5 predates pandas 3)"}


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [re.split(r"[<>=!\[ ;]", spec, maxsplit=1)[0] for spec in project["dependencies"]]


def imported_top_levels() -> set[str]:
    found: set[str] = set()
    for path in [*(ROOT / "zfish_assets").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy_module"
                  and node.args and isinstance(node.args[0], ast.Constant)):  # imported where first used
                found.add(node.args[0].value.split(".")[0])
    return found


def test_no_declared_library_stays_unimported():
    imported = imported_top_levels()
    unused = [name for name in declared() if name not in NOT_IMPORTED and name.replace("-", "_") not in imported]
    assert not unused, f"declared in pyproject.toml, imported nowhere: {unused}"


def _locked(lock: str) -> dict[str, list[str]]:
    """Each `name==version` requirement of a lock file with the sha256 hashes on its continuation lines."""
    pins: dict[str, list[str]] = {}
    current = None
    for line in lock.splitlines():
        pin = re.match(r"^([A-Za-z0-9_.\[\],-]+==\S+)", line)
        if pin:
            current = pin.group(1)
            pins[current] = []
        elif current and line.strip().startswith("--hash="):
            pins[current].append(line.strip().removeprefix("--hash=").rstrip(" \\"))
        elif not line.startswith(" "):
            current = None
    return pins


def test_every_locked_package_carries_its_files_hashes_and_every_install_requires_them():
    """A lock that pins versions only installs whatever file the index serves under that version today; with
    each file's sha256 and `--require-hashes`, a replaced file stops the install."""
    for lock in sorted((ROOT / "requirements").glob("*.txt")):
        pins = _locked(lock.read_text())
        assert pins, f"{lock.name} pins nothing"
        unhashed = [pin for pin, hashes in pins.items() if not hashes]
        malformed = [h for hashes in pins.values() for h in hashes if not re.fullmatch(r"sha256:[0-9a-f]{64}", h)]
        assert not unhashed and not malformed, f"{lock.name}: without hashes {unhashed}, malformed {malformed}"
        # pip's hash-checking mode takes `name` and `name[extra]` as two requirements: both pinned, same files.
        twins = {pin: re.sub(r"\[[^\]]*\]", "", pin) for pin in pins if "[" in pin}
        unpaired = [pin for pin, bare in twins.items() if sorted(pins.get(bare, [])) != sorted(pins[pin])]
        assert not unpaired, f"{lock.name}: extras pinned without their bare twin (bin/lock-bare-extras): {unpaired}"
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if re.search(r"pip install .*-r \S*(LOCK|requirements/)", line)]
    assert installs and all("--require-hashes" in line for line in installs), installs
    compiles = [line for line in makefile.splitlines() if "uv pip compile" in line]
    following = makefile.split("uv pip compile")[1:]
    assert compiles and all("--generate-hashes" in part.split("-o requirements/")[0] for part in following)
