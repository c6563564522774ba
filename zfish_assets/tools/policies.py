"""Three principals, three IAM policies: each may do its part of the walkthrough and nothing more.

- **deployer** (whoever runs `zfish deploy`): creates and updates the database, the crawlers and
  the job, writes the job's code under `_zfish/glue/`, and passes the job role to Glue. The only
  principal that may write code.
- **runner** (the Dagster process): lands raw days, registers them (and joined_fish_data) in the
  catalog, starts, watches and stops the job, reads the job's results, verifies the job's code
  (reads, never writes it), reads the Hudi table, exports training sets, runs Athena in its
  workgroup. Writes `processed/` only when it runs the job itself (`ZFISH_ENGINE=spark`).
- **job role** (what the Glue job and the crawlers run as): reads raw days, their ledgers and the
  catalog, writes `processed/` and its run results and, in crawler mode, registers the raw tables'
  partitions; writes its logs. Reads its code, never writes it. It never writes joined_fish_data's
  catalog entry: the runner registers it (the Hudi IO manager, whichever engine wrote).

No statement grants a `*` action. Account ids are `*` in ARNs (the policies name no account);
the region is the configured one, else `*`.
"""

from __future__ import annotations

from glue_scripts.zfish_etl.accepted import ACCEPTED_DIR
from glue_scripts.zfish_etl.landing import LANDING_DIR
from zfish_assets.assets.training import EXPORT_PREFIX
from zfish_assets.tools.deploy import DeploySettings
from zfish_assets.domain.crawler import crawler_name
from zfish_assets.names import RAW_TABLES


CATALOG_READ = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions",
                "glue:BatchGetPartition"]
CATALOG_WRITE = ["glue:CreateTable", "glue:UpdateTable", "glue:CreatePartition", "glue:BatchCreatePartition",
                 "glue:UpdatePartition", "glue:BatchUpdatePartition"]
PRINCIPALS = ("deployer", "runner", "job-role")
GLUE_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.rstrip("/")


class _Arns:
    def __init__(self, s: DeploySettings) -> None:
        self.s, region = s, s.region or "*"
        self.glue = f"arn:aws:glue:{region}:*:"
        self.bucket = f"arn:aws:s3:::{s.bucket}"
        self.logs = f"arn:aws:logs:{region}:*:log-group:"
        self.athena = f"arn:aws:athena:{region}:*:workgroup/{s.athena_workgroup}"

    def objects(self, *folders: str) -> list[str]:
        """The objects under each folder, and the folder's own key (what s3a asks for when it looks a folder up)."""
        return [arn for f in folders for arn in (f"{self.bucket}/{self.s.prefix}/{f}", f"{self.bucket}/{self.s.prefix}/{f}/*")]

    def tables(self, *names: str) -> list[str]:
        db = self.s.database
        return [f"{self.glue}catalog", f"{self.glue}database/{db}", *[f"{self.glue}table/{db}/{n}" for n in names]]

    def crawlers(self) -> list[str]:
        return [f"{self.glue}crawler/{crawler_name(self.s.database, t)}" for t in RAW_TABLES]

    def job(self) -> str:
        return f"{self.glue}job/{self.s.job_name}"


def _statement(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources,
            **({"Condition": condition} if condition else {})}


def _prefixes(folders: list[str]) -> dict:
    """The condition that limits `s3:ListBucket` to listings under `folders`."""
    return {"StringLike": {"s3:prefix": folders}}


def deployer_policy(s: DeploySettings) -> dict:
    a = _Arns(s)
    return {"Version": "2012-10-17", "Statement": [
        _statement("TheDatabase", ["glue:GetDatabase", "glue:CreateDatabase", "glue:UpdateDatabase"],
                   a.tables()),
        _statement("TheCrawlers", ["glue:GetCrawler", "glue:CreateCrawler", "glue:UpdateCrawler"], a.crawlers()),
        _statement("TheJob", ["glue:GetJob", "glue:CreateJob", "glue:UpdateJob"], [a.job()]),
        _statement("PassTheJobRoleToGlue", ["iam:PassRole"], [s.role_arn],
                   {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}}),
        _statement("ListTheCode", ["s3:ListBucket"], [a.bucket], _prefixes([f"{s.code_prefix}/*"])),
        _statement("ReadAndWriteTheCode", ["s3:GetObject", "s3:PutObject"], [f"{a.bucket}/{s.code_prefix}/*"]),
    ]}


def runner_policy(s: DeploySettings) -> dict:
    a = _Arns(s)
    # `_zfish/landing`: an S3 landing's marker and its copy of the day it replaces (see landing.py);
    # `_zfish/accepted`: the crawl's accepted rows, where partitions point (and Athena, as this principal, reads)
    lake_write = [*RAW_TABLES, "quarantine", "_zfish/keys", LANDING_DIR, ACCEPTED_DIR, EXPORT_PREFIX] + \
        (["processed"] if s.engine == "spark" else [])
    statements = [
        _statement("ListTheLake", ["s3:ListBucket"], [a.bucket], _prefixes([f"{s.prefix}/*"])),
        _statement("LandDaysAndLedgersExportTrainingSets", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                   a.objects(*lake_write)),
        _statement("ReadTheTableTheCodeAndRunResults", ["s3:GetObject"],
                   a.objects("processed", "_zfish/glue", "_zfish/job-results")),
        _statement("RegisterDaysAndTheJoinedTable", CATALOG_READ + CATALOG_WRITE, a.tables("*")),
    ]
    if s.engine == "glue":
        statements.append(_statement("StartWatchAndStopTheJob", ["glue:GetJob", "glue:StartJobRun", "glue:GetJobRun",
                                                                 "glue:GetJobRuns", "glue:BatchStopJobRun"], [a.job()]))
    if s.crawl_mode == "crawler":
        statements.append(_statement("RunTheCrawlers", ["glue:GetCrawler", "glue:StartCrawler"], a.crawlers()))
    if s.query == "athena":
        out_bucket, out_key = _split_s3(s.athena_output_location)
        statements += [
            _statement("QueriesInTheWorkgroup", ["athena:StartQueryExecution", "athena:GetQueryExecution",
                                                 "athena:GetQueryResults", "athena:StopQueryExecution"], [a.athena]),
            _statement("AthenaResultsBucket", ["s3:GetBucketLocation", "s3:ListBucket"], [f"arn:aws:s3:::{out_bucket}"]),
            _statement("AthenaResults", ["s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{out_bucket}/{out_key}/*"]),
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def job_role_policy(s: DeploySettings) -> dict:
    a = _Arns(s)
    statements = [
        _statement("ListTheLake", ["s3:ListBucket"], [a.bucket], _prefixes([f"{s.prefix}/*"])),
        # the landing markers too: a day being replaced is read from its copy (landing.py)
        _statement("ReadRawDaysLedgersAndTheCode", ["s3:GetObject"],
                   a.objects(*RAW_TABLES, "quarantine", LANDING_DIR, "_zfish/glue")),
        _statement("WriteTheHudiTable", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], a.objects("processed")),
        _statement("WriteRunResults", ["s3:PutObject"], a.objects("_zfish/job-results")),
        _statement("ReadTheCatalog", CATALOG_READ, a.tables("*")),
        _statement("GlueLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                   [f"{a.logs}/aws-glue/*", f"{a.logs}/aws-glue/*:log-stream:*"]),
    ]
    if s.crawl_mode == "crawler":
        statements.append(_statement("CrawlersRegisterRawDays", CATALOG_WRITE, a.tables(*RAW_TABLES)))
    return {"Version": "2012-10-17", "Statement": statements}


def policies(s: DeploySettings) -> dict[str, dict]:
    """Each principal's policy, by name; plus the job role's trust policy."""
    return {"deployer": deployer_policy(s), "runner": runner_policy(s), "job-role": job_role_policy(s),
            "job-role-trust": GLUE_TRUST}
