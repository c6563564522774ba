"""AWS credentials never leave the processes that use them: a day landed, crawled and joined on S3 (moto's
server, Spark writing Hudi over s3a with a session's key and token) shows the secret key and the token in
no command line of the session's processes, no file it writes (the data dir, Dagster's run and event storage
and compute logs, Spark's folders in the working directory) and no Dagster event or metadata."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from zfish_assets.tools.runs import join_range, land_and_crawl
from zfish_assets_tests.support.listening import command, descends_from
from zfish_assets_tests.support.moto import no_default_endpoint

DAY, LABELED = "2025-04-05", "2025-05-07"  # the day's fish are labeled 32 days later


class CommandLines:
    """The command line of every process of this session, sampled every 0.1 s in a thread while it runs."""

    def __init__(self) -> None:
        self.seen: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "CommandLines":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and int(entry.name) not in self.seen and descends_from(int(entry.name), os.getpid()):
                    self.seen[int(entry.name)] = command(int(entry.name), width=1 << 20)


def _files_holding(folder: Path, values: tuple[str, ...]) -> list[str]:
    found = []
    for path in folder.rglob("*") if folder.is_dir() else ():
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path} holds {'the secret key' if v == values[0] else 'the token'}" for v in values if v.encode() in data]
    return found


def test_a_day_on_s3_shows_the_secret_key_and_token_nowhere(aws, monkeypatch, tmp_path):
    from dagster import instance_for_test

    from zfish_assets.definitions import build_definitions

    no_default_endpoint(monkeypatch, tmp_path)
    secret, token = f"zfishSecret{secrets.token_hex(16)}", f"zfishToken{secrets.token_hex(24)}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    with CommandLines() as commands, instance_for_test(temp_dir=str(dagster_home)) as instance:
        defs = build_definitions()
        runs = land_and_crawl(defs, instance, [DAY], assets=["raw_observations", "observations"])
        runs += land_and_crawl(defs, instance, [LABELED], assets=["raw_outcomes", "outcomes"])
        runs.append(join_range(defs, instance, DAY, LABELED))
        assert all(run.success for run in runs), runs
        events = [str(entry) for run in instance.get_runs() for entry in
                  instance.all_logs(run.run_id)]
    import boto3

    from zfish_assets_tests.support.moto import BUCKET, REGION

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    hudi = s3.list_objects_v2(Bucket=BUCKET, Prefix="use-cases/fish-demo/processed/joined_fish_data/.hoodie/")
    assert [o["Key"] for o in hudi.get("Contents", []) if o["Key"].endswith(".commit")]  # Spark wrote over s3a
    assert events and commands.seen
    for value in (secret, token):
        assert not [line for line in commands.seen.values() if value in line]
        assert not [event for event in events if value in event]
    folders = [Path(os.environ["ZFISH_DATA_DIR"]), dagster_home, Path.cwd() / "artifacts", Path.cwd() / "spark-warehouse"]
    assert not [found for folder in folders for found in _files_holding(folder, (secret, token))]
