"""`zfish deploy`: the AWS resources the walkthrough needs, converged on what the settings say.

Every resource deploy owns is compared field by field with its definition here, and created or
updated where it differs: the Glue database, one on-demand crawler per raw table (for crawler
mode), the job's code in S3 (content-addressed, see `backends/job_code.py`), and the Glue job of the
`ZFISH_GLUE_VERSION` runtime, 5.0, 5.1 or 6.0 (Hudi through `--datalake-formats hudi`, the code's keys,
all of its arguments pinned: `job_definition`). A second deploy changes nothing; `--dry-run` prints
each difference. Runs (the Glue job engine, crawler mode's crawls) only start this job and these
crawlers; they never create or change anything. Whether a code object exists is found by listing
(`get_s3_object`): to the deployer's least-privilege policy S3 answers a GET of a missing key 403.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.files import get_s3_object
from glue_scripts.zfish_etl.spark_conf import SESSION_CONF, emrfs_encryption_conf, glue_conf_argument
from zfish_assets import settings
from zfish_assets.settings import CrawlMode, EngineKind, QueryKind
from zfish_assets.backends.job_code import CODE_DIGEST, ENTRY_POINT, EXTRA_PY_FILES, PACKAGE, SCRIPT_LOCATION, code_objects
from zfish_assets.domain.glue_crawler import crawler_definition, crawler_name
from zfish_assets.resources.aws_connection import aws_client
from zfish_assets.dagster_names import RAW_TABLES

DATABASE_DESCRIPTION = "zfish: the walkthrough's raw tables and joined_fish_data (managed by `zfish deploy`)"


@dataclass(frozen=True)
class DeploySettings:
    bucket: str
    region: str
    endpoint_url: str
    prefix: str
    database: str
    job_name: str
    role_arn: str
    athena_workgroup: str = "primary"
    athena_output: str = ""  # s3://... (default: under the lake prefix)
    engine: EngineKind = "glue"  # which principal writes processed/: the job role (glue) or Dagster (spark)
    crawl_mode: CrawlMode = "partitions"
    query: QueryKind = "duckdb"
    glue_timeout_s: float = float(settings.GLUE_TIMEOUT_S.default)
    kms_key_arn: str = ""  # SSE-KMS for every object zfish writes (ZFISH_KMS_KEY_ARN)

    @classmethod
    def from_env(cls) -> "DeploySettings":
        missing = [s.name for s in (settings.S3_BUCKET, settings.GLUE_ROLE_ARN) if not s.is_set()]
        if missing:
            raise ValueError(f"zfish deploy needs {', '.join(missing)} set")
        from zfish_assets.deployments import Parts

        # What is deployed is the aws deployment's parts, unless ZFISH_DEPLOYMENT says otherwise.
        parts = Parts.of(settings.DEPLOYMENT.get() if settings.DEPLOYMENT.is_set() else "aws")
        return cls(
            bucket=settings.S3_BUCKET.get(), region=settings.AWS_REGION.get(),
            endpoint_url=settings.AWS_ENDPOINT_URL.get(), prefix=settings.lake_prefix(),
            database=settings.database(), job_name=settings.GLUE_JOB_NAME.get(), role_arn=settings.GLUE_ROLE_ARN.get(),
            athena_workgroup=settings.ATHENA_WORKGROUP.get(), athena_output=settings.ATHENA_OUTPUT.get(),
            engine=parts.engine, crawl_mode=parts.crawl_mode, query=parts.query,
            glue_timeout_s=settings.GLUE_TIMEOUT_S.get(), kms_key_arn=settings.KMS_KEY_ARN.get(),
        )

    @property
    def code_prefix(self) -> str:
        return f"{self.prefix}/{layout.code_dir()}"

    @property
    def athena_output_location(self) -> str:
        return self.athena_output or f"s3://{self.bucket}/{self.prefix}/{layout.athena_results_dir()}/"


@dataclass(frozen=True)
class Action:
    description: str
    apply: Callable[[], object]
    changes: tuple[str, ...] = ()  # one line per differing field: `field: now -> wanted`


def differences(wanted: Any, actual: Any, path: str = "", exact: tuple[str, ...] = ()) -> list[str]:
    """The fields of `wanted` that `actual` does not hold, as `path: actual -> wanted` lines.

    Fields AWS adds by itself (creation times, defaults deploy does not set) are not compared,
    except under the paths in `exact`, which deploy owns whole (the job's arguments: a stale one
    must go). JSON held in strings (a crawler's `Configuration`) is compared parsed.
    """
    if isinstance(wanted, dict) and isinstance(actual, dict):
        keys = set(wanted) | (set(actual) if path in exact else set())
        return [line for key in sorted(keys)
                for line in differences(wanted.get(key), actual.get(key), f"{path}.{key}" if path else key, exact)]
    if isinstance(wanted, list) and isinstance(actual, list) and len(wanted) == len(actual):
        return [line for i, (w, a) in enumerate(zip(wanted, actual)) for line in differences(w, a, f"{path}[{i}]", exact)]
    if isinstance(wanted, str) and isinstance(actual, str) and wanted.startswith("{") and actual.startswith("{"):
        try:
            if json.loads(wanted) == json.loads(actual):
                return []
        except ValueError:
            pass
    if wanted == actual or (isinstance(wanted, dict) and not wanted and actual is None):
        return []
    return [f"{path}: {json.dumps(actual, default=str)} -> {json.dumps(wanted, default=str)}"]


def database_input(s: DeploySettings) -> dict:
    return {"Name": s.database, "Description": DATABASE_DESCRIPTION}


def crawler_definitions(s: DeploySettings) -> list[dict]:
    return [crawler_definition(crawler_name(s.database, t), s.role_arn, s.database, f"s3://{s.bucket}/{s.prefix}/{t}/")
            for t in RAW_TABLES]


def job_definition(s: DeploySettings) -> dict:
    """The job as deploy defines it. Every argument is code or how code runs (the script, the package,
    the Spark settings, the runtime's formats, the code's digest, the Python module it installs:
    `dagster-pipes`), so all are `NonOverridableArguments`:
    whoever may start the job (`glue:StartJobRun`) cannot replace them with a run's `Arguments`
    (Glue keeps the job's value), and runs pass only their own (`JobArgs`). No `--enable-glue-datacatalog`:
    the job reads the catalog through boto3 (`glue_scripts/zfish_etl/catalog.py`), never through Spark's metastore.
    """
    code = {name: f"s3://{s.bucket}/{obj.key(s.code_prefix)}" for name, obj in code_objects().items()}
    return {
        "Role": s.role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": code[ENTRY_POINT], "PythonVersion": "3"},
        "GlueVersion": settings.glue_runtime().glue_version,
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
        "Timeout": job_timeout_minutes(s.glue_timeout_s),
        "DefaultArguments": {},
        "NonOverridableArguments": {
            SCRIPT_LOCATION: code[ENTRY_POINT],
            EXTRA_PY_FILES: code[PACKAGE],
            CODE_DIGEST: code_objects()[PACKAGE].sha256,
            "--datalake-formats": "hudi",
            "--conf": glue_conf_argument({**SESSION_CONF, **emrfs_encryption_conf(s.kms_key_arn)}),
            "--job-language": "python",
            "--enable-continuous-cloudwatch-log": "true",
            # The job's side of Dagster Pipes (no dependencies), at the version this checkout installs.
            "--additional-python-modules": f"dagster-pipes=={version('dagster-pipes')}",
            # The job needs none of these; pinned so that no run brings its own (`CODE_BEARING`). The package
            # (a zip of Python, no classes) is harmless on the classpath and in the script's folder.
            "--extra-jars": code[PACKAGE],
            "--extra-files": code[PACKAGE],
            "--user-jars-first": "false",
            "--python-modules-installer-option": "--only-binary=:all:",
            **({"--kms_key_arn": s.kms_key_arn} if s.kms_key_arn else {}),
        },
    }


def job_timeout_minutes(timeout_s: float) -> int:
    """The job's Glue `Timeout` (whole minutes, at least 1) from `ZFISH_GLUE_TIMEOUT_S`, which the runner
    waits for too: one fact for both. Rounded up, so Glue's limit is a backstop for a run the runner
    stops itself when its wait ends."""
    return max(1, math.ceil(timeout_s / 60))


def _plan_database(glue, s: DeploySettings) -> list[Action]:
    wanted = database_input(s)
    try:
        found = glue.get_database(Name=s.database)["Database"]
    except glue.exceptions.EntityNotFoundException:
        return [Action(f"create Glue database {s.database}", lambda: glue.create_database(DatabaseInput=wanted))]
    changes = differences(wanted, found)
    return [Action(f"update Glue database {s.database}", lambda: glue.update_database(Name=s.database, DatabaseInput=wanted),
                   tuple(changes))] if changes else []


def _plan_crawlers(glue, s: DeploySettings) -> list[Action]:
    actions = []
    for crawler in crawler_definitions(s):
        name, target = crawler["Name"], crawler["Targets"]["S3Targets"][0]["Path"]
        try:
            found = glue.get_crawler(Name=name)["Crawler"]
        except glue.exceptions.EntityNotFoundException:
            actions.append(Action(f"create crawler {name} (on demand) for {target}",
                                  lambda crawler=crawler: glue.create_crawler(**crawler)))
            continue
        changes = differences(crawler, found)
        if changes:
            actions.append(Action(f"update crawler {name}", lambda crawler=crawler: glue.update_crawler(**crawler),
                                  tuple(changes)))
    return actions


def _plan_code(s3, s: DeploySettings) -> list[Action]:
    """Upload each code object missing under its content key; restore one whose bytes were replaced."""
    actions = []
    for obj in code_objects().values():
        key = obj.key(s.code_prefix)
        body = get_s3_object(s3, s.bucket, key)  # a missing key is 403 to the deployer: found by listing
        if body is None:
            actions.append(Action(f"upload s3://{s.bucket}/{key}",
                                  lambda key=key, obj=obj: s3.put_object(Bucket=s.bucket, Key=key, Body=obj.body)))
            continue
        found = hashlib.sha256(body).hexdigest()
        if found != obj.sha256:
            actions.append(Action(f"restore s3://{s.bucket}/{key} (replaced: its bytes hash to {found})",
                                  lambda key=key, obj=obj: s3.put_object(Bucket=s.bucket, Key=key, Body=obj.body),
                                  (f"sha256: {json.dumps(found)} -> {json.dumps(obj.sha256)}",)))
            continue
        actions += _plan_code_key(s3, s, key, obj.body)
    return actions


def _plan_code_key(s3, s: DeploySettings, key: str, body: bytes) -> list[Action]:
    """Rewrite a code object encrypted with another KMS key than `ZFISH_KMS_KEY_ARN`: the policies grant
    the job role that key only, so code left under a former key could no longer be read. Without a
    key the bucket's default applies, which the deployer may not read: nothing is compared then."""
    if not s.kms_key_arn:
        return []
    found = s3.head_object(Bucket=s.bucket, Key=key).get("SSEKMSKeyId")
    if found == s.kms_key_arn:
        return []
    return [Action(f"re-encrypt s3://{s.bucket}/{key} with the KMS key ZFISH_KMS_KEY_ARN names",
                   lambda: s3.put_object(Bucket=s.bucket, Key=key, Body=body),
                   (f"SSEKMSKeyId: {json.dumps(found)} -> {json.dumps(s.kms_key_arn)}",))]


def _plan_job(glue, s: DeploySettings) -> list[Action]:
    wanted = job_definition(s)
    try:
        found = glue.get_job(JobName=s.job_name)["Job"]
    except glue.exceptions.EntityNotFoundException:
        return [Action(f"create Glue {settings.glue_runtime().glue_version} job {s.job_name}", lambda: glue.create_job(Name=s.job_name, **wanted))]
    changes = differences(wanted, found, exact=("DefaultArguments", "NonOverridableArguments"))
    return [Action(f"update Glue job {s.job_name}", lambda: glue.update_job(JobName=s.job_name, JobUpdate=wanted),
                   tuple(changes))] if changes else []


def plan(s: DeploySettings) -> list[Action]:
    """What must change for the account to match the code and the settings (empty when it already does).

    Code comes before the job, so the job never names an object not yet uploaded.
    """
    glue, s3 = aws_client("glue", s.region, s.endpoint_url), aws_client("s3", s.region, s.endpoint_url, s.kms_key_arn)
    return [*_plan_database(glue, s), *_plan_crawlers(glue, s), *_plan_code(s3, s), *_plan_job(glue, s)]


def deploy(s: DeploySettings, dry_run: bool = False, echo: Callable[[str], object] = print) -> list[Action]:
    """Apply (or with `dry_run` only print) the plan, each change with its fields; returns the actions.

    Each step is numbered (`[2/5]`) and says how long it took when done: uploads and job updates
    can take a while, and a log then shows which step is under way.
    """
    echo(f"comparing the account with the code (Glue database {s.database}, crawlers, job {s.job_name}, "
         f"code under s3://{s.bucket}/{s.code_prefix}/) ...")
    actions = plan(s)
    glue = settings.glue_runtime()
    if not glue.local:  # deployed, never run here: say so where the choice is made
        echo(f"note: Glue {glue.glue_version}'s Hudi write (Hudi {glue.hudi} on Spark {glue.pyspark}) has not run under "
             f"zfish's tests: Maven Central serves no {glue.hudi_coordinate} (docs/aws.md, Glue 6.0)")
    if not actions:
        echo("up to date: nothing to change")
    for number, action in enumerate(actions, 1):
        step = f"[{number}/{len(actions)}] "
        echo(step + ("would " if dry_run else "") + action.description)
        for change in action.changes:
            echo(f"    {change}")
        if not dry_run:
            began = time.monotonic()
            action.apply()
            echo(f"{' ' * len(step)}done in {time.monotonic() - began:.1f}s")
    return actions
