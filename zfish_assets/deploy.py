"""`zfish deploy`: the AWS resources the walkthrough needs, created or updated idempotently.

The plan compares what exists with what should: the Glue database, one on-demand crawler per raw
table (for crawler mode), the job script and the shared `glue_scripts` package in S3, and the Glue
job, of the `ZFISH_GLUE_VERSION` runtime, 5.0 or 5.1 (Hudi through `--datalake-formats hudi`, the Glue Data Catalog as metastore, the script's
hash in `--zfish-script-sha256` so runs refuse a stale deployment). A second deploy changes nothing.
Runs (the Glue job engine) only start this job; they never create or change anything.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from zfish_assets import settings
from zfish_assets.resources.crawler import crawler_definition, crawler_name
from zfish_assets.job_code import GLUE_SCRIPTS, script_sha256
from zfish_assets.resources.engines import SCRIPT_HASH_ARGUMENT
from zfish_assets.resources.lake import RAW_TABLES, aws_client
from zfish_assets.runtimes import runtime

SPARK_CONF = (
    "spark.serializer=org.apache.spark.serializer.KryoSerializer"
    " --conf spark.sql.hive.convertMetastoreParquet=false"
    " --conf spark.sql.extensions=org.apache.spark.sql.hudi.HoodieSparkSessionExtension"
    " --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.hudi.catalog.HoodieCatalog"
    " --conf spark.kryo.registrator=org.apache.spark.HoodieSparkKryoRegistrar"
    " --conf spark.sql.session.timeZone=UTC"
)


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

    @classmethod
    def from_env(cls) -> "DeploySettings":
        missing = [n for n in ("ZFISH_S3_BUCKET", "ZFISH_GLUE_ROLE_ARN") if not settings.env(n, "")]
        if missing:
            raise ValueError(f"zfish deploy needs {', '.join(missing)} set")
        return cls(
            bucket=settings.env("ZFISH_S3_BUCKET", ""), region=settings.env("ZFISH_AWS_REGION", ""),
            endpoint_url=settings.env("ZFISH_AWS_ENDPOINT_URL", ""), prefix=settings.lake_prefix(),
            database=settings.database(), job_name=settings.env("ZFISH_GLUE_JOB_NAME", "zfish-joined-fish-data"),
            role_arn=settings.env("ZFISH_GLUE_ROLE_ARN", ""),
            athena_workgroup=settings.env("ZFISH_ATHENA_WORKGROUP", "primary"),
        )

    @property
    def code_prefix(self) -> str:
        return f"{self.prefix}/_zfish/glue"


@dataclass(frozen=True)
class Action:
    description: str
    apply: Callable[[], object]


def package_zip() -> bytes:
    """`glue_scripts/` (entry point and zfish_etl) as a zip for `--extra-py-files`: same code, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(GLUE_SCRIPTS.rglob("*.py")):
            info = zipfile.ZipInfo(f"glue_scripts/{path.relative_to(GLUE_SCRIPTS).as_posix()}", (2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def job_definition(s: DeploySettings) -> dict:
    code = f"s3://{s.bucket}/{s.code_prefix}"
    return {
        "Role": s.role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": f"{code}/joined_fish_data.py", "PythonVersion": "3"},
        "GlueVersion": runtime().glue_version,
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
        "Timeout": 120,
        "DefaultArguments": {
            "--datalake-formats": "hudi",
            "--enable-glue-datacatalog": "true",
            "--conf": SPARK_CONF,
            "--extra-py-files": f"{code}/glue_scripts.zip",
            "--job-language": "python",
            "--enable-continuous-cloudwatch-log": "true",
            "--catalog": "glue",
            "--hive_sync": "true",
            SCRIPT_HASH_ARGUMENT: script_sha256(),
        },
    }


def plan(s: DeploySettings) -> list[Action]:
    """What must change for the account to match the code (empty when it already does)."""
    glue, s3 = aws_client("glue", s.region, s.endpoint_url), aws_client("s3", s.region, s.endpoint_url)
    actions: list[Action] = []
    try:
        glue.get_database(Name=s.database)
    except glue.exceptions.EntityNotFoundException:
        actions.append(Action(f"create Glue database {s.database}",
                              lambda: glue.create_database(DatabaseInput={"Name": s.database})))
    for table in RAW_TABLES:
        name = crawler_name(s.database, table)
        try:
            glue.get_crawler(Name=name)
        except glue.exceptions.EntityNotFoundException:
            crawler = crawler_definition(name, s.role_arn, s.database, f"s3://{s.bucket}/{s.prefix}/{table}/")
            actions.append(Action(f"create crawler {name} (on demand) for s3://{s.bucket}/{s.prefix}/{table}/",
                                  lambda crawler=crawler: glue.create_crawler(**crawler)))
    for name, body in (("joined_fish_data.py", (GLUE_SCRIPTS / "joined_fish_data.py").read_bytes()),
                       ("glue_scripts.zip", package_zip())):
        key = f"{s.code_prefix}/{name}"
        try:
            current = s3.head_object(Bucket=s.bucket, Key=key)["ETag"].strip('"')
        except s3.exceptions.ClientError:
            current = None
        if current != hashlib.md5(body).hexdigest():
            actions.append(Action(f"upload s3://{s.bucket}/{key}",
                                  lambda key=key, body=body: s3.put_object(Bucket=s.bucket, Key=key, Body=body)))
    wanted = job_definition(s)
    try:
        job = glue.get_job(JobName=s.job_name)["Job"]
    except glue.exceptions.EntityNotFoundException:
        actions.append(Action(f"create Glue {runtime().glue_version} job {s.job_name}",
                              lambda: glue.create_job(Name=s.job_name, **wanted)))
    else:
        differs = [k for k, v in wanted.items() if job.get(k) != v]
        if differs:
            actions.append(Action(f"update Glue job {s.job_name} ({', '.join(differs)})",
                                  lambda: glue.update_job(JobName=s.job_name, JobUpdate=wanted)))
    return actions


def iam_policy(s: DeploySettings) -> dict:
    """Least privilege for the job's role and the platform: the lake prefixes, the one database."""
    arn = f"arn:aws:s3:::{s.bucket}"
    catalog = "arn:aws:glue:*:*:"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListLakePrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn,
             "Condition": {"StringLike": {"s3:prefix": [f"{s.prefix}/*"]}}},
            {"Sid": "ReadWriteLake", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"{arn}/{s.prefix}/*"},
            {"Sid": "DeleteRelandedDaysAndHudiFiles", "Effect": "Allow", "Action": "s3:DeleteObject",
             "Resource": [f"{arn}/{s.prefix}/{t}/*" for t in RAW_TABLES]
             + [f"{arn}/{s.prefix}/processed/*", f"{arn}/{s.prefix}/_zfish/*"]},
            {"Sid": "CatalogOneDatabase", "Effect": "Allow",
             "Action": ["glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:GetTables",
                        "glue:CreateTable", "glue:UpdateTable", "glue:GetPartition", "glue:GetPartitions",
                        "glue:BatchCreatePartition", "glue:CreatePartition", "glue:UpdatePartition",
                        "glue:BatchGetPartition"],
             "Resource": [f"{catalog}catalog", f"{catalog}database/{s.database}", f"{catalog}table/{s.database}/*"]},
            {"Sid": "RunTheJobAndCrawlers", "Effect": "Allow",
             "Action": ["glue:GetJob", "glue:StartJobRun", "glue:GetJobRun", "glue:BatchStopJobRun",
                        "glue:GetCrawler", "glue:StartCrawler"],
             "Resource": [f"{catalog}job/{s.job_name}"] + [f"{catalog}crawler/{crawler_name(s.database, t)}" for t in RAW_TABLES]},
            {"Sid": "CreateTheCrawlersInCrawlerMode", "Effect": "Allow", "Action": "glue:CreateCrawler",
             "Resource": [f"{catalog}crawler/{crawler_name(s.database, t)}" for t in RAW_TABLES]},
            {"Sid": "PassTheRoleToGlue", "Effect": "Allow", "Action": "iam:PassRole", "Resource": s.role_arn,
             "Condition": {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}}},
            {"Sid": "AthenaQueries", "Effect": "Allow",
             "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                        "athena:StopQueryExecution"],
             "Resource": f"arn:aws:athena:*:*:workgroup/{s.athena_workgroup}"},
            {"Sid": "AthenaResultBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": arn},
        ],
    }


def deploy(s: DeploySettings, dry_run: bool = False, echo: Callable[[str], object] = print) -> list[Action]:
    """Apply (or with `dry_run` only print) the plan; returns the actions it found necessary.

    Each step is numbered (`[2/5]`) and says how long it took when done: uploads and job updates
    can take a while, and a log then shows which step is under way.
    """
    echo(f"comparing the account with the code (Glue database {s.database}, crawlers, job {s.job_name}, "
         f"code under s3://{s.bucket}/{s.code_prefix}/) ...")
    actions = plan(s)
    if not actions:
        echo("up to date: nothing to change")
    for number, action in enumerate(actions, 1):
        step = f"[{number}/{len(actions)}] "
        echo(step + ("would " if dry_run else "") + action.description)
        if not dry_run:
            began = time.monotonic()
            action.apply()
            echo(f"{' ' * len(step)}done in {time.monotonic() - began:.1f}s")
    return actions
