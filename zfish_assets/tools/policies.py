"""Three principals, three IAM policies: each may do its part of the walkthrough and nothing more.

- **deployer** (whoever runs `zfish deploy`): creates and updates the database, the crawlers and
  the job, writes the job's code under `layout.code_dir()`, and passes the job role to Glue. The only
  principal that may write code.
- **runner** (the Dagster process): lands raw days, registers them (and joined_fish_data) in the
  catalog, starts, watches and stops the job, puts each run's Dagster Pipes context and reads the
  run's CloudWatch output stream (the job's lines and its result), verifies the job's code
  (reads, never writes it), reads the Hudi table, exports training sets, runs Athena in its
  workgroup, records what each join read under `layout.news_dir()` (so a run with no news skips the job).
  Writes `processed/` only when it runs the job itself (`ZFISH_ENGINE=spark`).
- **job role** (what the Glue job and the crawlers run as): reads raw days, their ledgers and the
  catalog and its run's Pipes context, writes `processed/` and, in crawler mode, registers the raw tables'
  partitions; writes its logs. Reads its code, never writes it. It never writes joined_fish_data's
  catalog entry: the runner registers it (the Hudi IO manager, whichever engine wrote).

No statement grants a `*` action. Account ids are `*` in ARNs (the policies name no account);
the region is the configured one, else `*`. The job role's trust policy names the role's own
account (`aws:SourceAccount`, `aws:SourceArn`): Glue assumes it for this account's jobs and crawlers
only. Every statement that writes objects may abort a multipart upload; with `ZFISH_KMS_KEY_ARN`
each principal may use that key (`kms:GenerateDataKey` to write, `kms:Decrypt` to read). Listing
is scoped to the lake's prefix, except for the principal whose Spark writes the table (`_list_lake`).
"""

from __future__ import annotations

import json

from glue_scripts.zfish_etl import layout
from zfish_assets.tools.deploy import DeploySettings
from zfish_assets.domain.glue_crawler import crawler_name
from zfish_assets.dagster_names import RAW_TABLES
from zfish_assets.setting_kinds import partition_of


CATALOG_READ = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions",
                "glue:BatchGetPartition"]
CATALOG_WRITE = ["glue:CreateTable", "glue:UpdateTable", "glue:CreatePartition", "glue:BatchCreatePartition",
                 "glue:UpdatePartition", "glue:BatchUpdatePartition"]
CATALOG_DROP = ["glue:DeletePartition"]  # the runner's crawl drops a retracted day; a crawler never needs it
PRINCIPALS = ("deployer", "runner", "job-role")
GLUE_OUTPUT_LOG_GROUP = "/aws-glue/jobs/output"
WRITE = ["s3:PutObject", "s3:AbortMultipartUpload"]  # a multipart upload (boto3's upload_file, s3a) may be aborted
KMS_USE = ["kms:GenerateDataKey", "kms:Decrypt"]  # writing an SSE-KMS object, and reading one


def _split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key prefix without surrounding `/`) of an `s3://bucket[/prefix][/]` location."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.strip("/")


def _s3_arn(bucket: str, *parts: str) -> str:
    """The ARN of `bucket`, or of the key its non-empty `parts` make (`/`-joined): never an empty segment."""
    key = "/".join(part.strip("/") for part in parts if part.strip("/"))
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else "")


def _account(role_arn: str) -> str:
    """The account of the job role's ARN (`arn:aws:iam::<account>:role/...`): the trust policy's source account."""
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[4].isdigit():
        raise ValueError(f"ZFISH_GLUE_ROLE_ARN={role_arn!r} is not a role ARN, arn:aws:iam::<account>:role/<name>")
    return parts[4]


def trust_policy(s: DeploySettings) -> dict:
    """Glue may assume the job role, on behalf of this account's Glue resources only (no confused deputy:
    another account's job or crawler naming this role is refused).

    `...IfExists`: a service that sends `aws:SourceAccount` / `aws:SourceArn` with its AssumeRole is
    held to them; Glue's documentation does not say that it sends them for jobs and crawlers, and
    a plain `StringEquals` on a key never sent would lock Glue out of the role.
    """
    account, region = _account(s.role_arn), s.region or "*"
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEqualsIfExists": {"aws:SourceAccount": account},
                      "ArnLikeIfExists": {"aws:SourceArn": f"arn:aws:glue:{region}:{account}:*"}}}]}


class _Arns:
    def __init__(self, s: DeploySettings) -> None:
        self.s, region = s, s.region or "*"
        self.glue = f"arn:aws:glue:{region}:*:"
        self.bucket = _s3_arn(s.bucket)
        self.logs = f"arn:aws:logs:{region}:*:log-group:"
        self.athena = f"arn:aws:athena:{region}:*:workgroup/{s.athena_workgroup}"

    def objects(self, *folders: str) -> list[str]:
        """The objects under each folder, and the folder's own key (what s3a asks for when it looks a folder up)."""
        return [arn for f in folders for arn in (_s3_arn(self.s.bucket, self.s.prefix, f),
                                                 _s3_arn(self.s.bucket, self.s.prefix, f, "*"))]

    def tables(self, *names: str) -> list[str]:
        db = self.s.database
        return [f"{self.glue}catalog", f"{self.glue}database/{db}", *[f"{self.glue}table/{db}/{n}" for n in names]]

    def crawlers(self) -> list[str]:
        return [f"{self.glue}crawler/{crawler_name(self.s.database, t)}" for t in RAW_TABLES]

    def job(self) -> str:
        return f"{self.glue}job/{self.s.job_name}"

    def output_streams(self) -> list[str]:
        """The job runs' output log group (Glue's default `/aws-glue/jobs`) and its streams."""
        return [f"{self.logs}{GLUE_OUTPUT_LOG_GROUP}", f"{self.logs}{GLUE_OUTPUT_LOG_GROUP}:log-stream:*"]


def _kms(s: DeploySettings) -> list[dict]:
    """Use of the SSE-KMS key every write names (`ZFISH_KMS_KEY_ARN`); none without one."""
    return [_statement("UseTheKmsKey", KMS_USE, [s.kms_key_arn])] if s.kms_key_arn else []


def _statement(sid: str, actions: list[str], resources: list[str] | str, condition: dict | None = None) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources,
            **({"Condition": condition} if condition else {})}


def _prefixes(folders: list[str]) -> dict:
    """The condition that limits `s3:ListBucket` to listings under `folders`."""
    return {"StringLike": {"s3:prefix": folders}}


def _list_lake(a: "_Arns", spark: bool) -> dict:
    """Listing the lake: under its prefix only, except for a principal whose Spark writes the table.

    Spark's S3 filesystems (s3a here, EMRFS on Glue) look a path up with HEAD before listing it, and S3
    answers a HEAD of a missing key 404 only to a principal that may list the bucket itself (a HEAD
    has no `s3:prefix`, so a prefix-scoped right does not count); to others it is 403, which they
    take as a failure, not as "not there". Listing reveals names, never contents.
    """
    if spark:
        return _statement("ListTheLakesBucketForSpark", ["s3:ListBucket"], [a.bucket])
    return _statement("ListTheLake", ["s3:ListBucket"], [a.bucket], _prefixes([f"{a.s.prefix}/*"]))


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
        _statement("ReadAndWriteTheCode", ["s3:GetObject", *WRITE], [_s3_arn(s.bucket, s.code_prefix, "*")]),
        *_kms(s),
    ]}


def runner_policy(s: DeploySettings) -> dict:
    a = _Arns(s)
    # landing: an S3 landing's marker and its copy of the day it replaces (see landing.py);
    # accepted: the crawl's accepted rows, where partitions point (and Athena, as this principal, reads);
    # news: what each join read, for the next run of its window to skip the job when nothing changed
    lake_write = [*RAW_TABLES, layout.QUARANTINE, layout.keys_dir(), layout.landing_dir(), layout.accepted_dir(),
                  layout.news_dir(), layout.EXPORTS] + ([layout.PROCESSED] if s.engine == "spark" else [])
    statements = [
        _list_lake(a, spark=s.engine == "spark"),
        _statement("LandDaysAndLedgersExportTrainingSets", ["s3:GetObject", *WRITE, "s3:DeleteObject"],
                   a.objects(*lake_write)),
        _statement("ReadTheTableAndTheCode", ["s3:GetObject"], a.objects(layout.PROCESSED, layout.code_dir())),
        _statement("RegisterDaysAndTheJoinedTable", CATALOG_READ + CATALOG_WRITE + CATALOG_DROP, a.tables("*")),
    ]
    if s.engine == "glue":
        statements += [
            _statement("StartWatchAndStopTheJob", ["glue:GetJob", "glue:StartJobRun", "glue:GetJobRun",
                                                   "glue:GetJobRuns", "glue:BatchStopJobRun"], [a.job()]),
            # Dagster Pipes: each run's context, put for the job and deleted after it; the run's output
            # stream (the job's lines and Pipes messages), read while it runs.
            _statement("PutEachRunsPipesContext", [*WRITE, "s3:DeleteObject"], a.objects(layout.pipes_dir())),
            _statement("ReadTheJobsOutputStream", ["logs:DescribeLogStreams", "logs:GetLogEvents"], a.output_streams()),
        ]
    if s.crawl_mode == "crawler":
        statements.append(_statement("RunTheCrawlers", ["glue:GetCrawler", "glue:StartCrawler"], a.crawlers()))
    if s.query == "athena":
        out_bucket, out_key = _split_s3(s.athena_output_location)
        statements += [
            _statement("QueriesInTheWorkgroup", ["athena:StartQueryExecution", "athena:GetQueryExecution",
                                                 "athena:GetQueryResults", "athena:StopQueryExecution"], [a.athena]),
            _statement("AthenaResultsBucket", ["s3:GetBucketLocation"], [_s3_arn(out_bucket)]),
            # Listing the results only: by default they are in the lake's bucket, where a listing of the bucket
            # would show every key of every prefix (`ZFISH_ATHENA_OUTPUT` never reaches the lake's own keys:
            # `settings.check_athena_output`). A results bucket of its own (its root) is listed whole.
            _statement("ListAthenaResults", ["s3:ListBucket"], [_s3_arn(out_bucket)],
                       _prefixes([f"{out_key}/*"]) if out_key else None),
            _statement("AthenaResults", ["s3:GetObject", *WRITE], [_s3_arn(out_bucket, out_key, "*")]),
        ]
    return {"Version": "2012-10-17", "Statement": statements + _kms(s)}


def job_role_policy(s: DeploySettings) -> dict:
    a = _Arns(s)
    statements = [
        _list_lake(a, spark=True),
        # the landing markers too: a day being replaced is read from its copy (landing.py)
        _statement("ReadRawDaysLedgersAndTheCode", ["s3:GetObject"],
                   a.objects(*RAW_TABLES, layout.QUARANTINE, layout.landing_dir(), layout.code_dir())),
        _statement("WriteTheHudiTable", ["s3:GetObject", *WRITE, "s3:DeleteObject"], a.objects(layout.PROCESSED)),
        _statement("ReadEachRunsPipesContext", ["s3:GetObject"], a.objects(layout.pipes_dir())),
        _statement("ReadTheCatalog", CATALOG_READ, a.tables("*")),
        _statement("GlueLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                   [f"{a.logs}/aws-glue/*", f"{a.logs}/aws-glue/*:log-stream:*"]),
    ]
    if s.crawl_mode == "crawler":
        statements.append(_statement("CrawlersRegisterRawDays", CATALOG_WRITE, a.tables(*RAW_TABLES)))
    return {"Version": "2012-10-17", "Statement": statements + _kms(s)}


def in_partition(document: dict, region: str) -> dict:
    """`document` with its ARNs in `region`'s partition: the builders write the commercial one (`arn:aws:`),
    which names nothing in `aws-cn` or `aws-us-gov`; the role's and key's ARNs already agree with the region
    (`settings.check_aws_agree`)."""
    partition = partition_of(region)
    if partition == "aws":
        return document
    return json.loads(json.dumps(document).replace('"arn:aws:', f'"arn:{partition}:'))


def policies(s: DeploySettings) -> dict[str, dict]:
    """Each principal's policy, by name; plus the job role's trust policy; their ARNs in the region's partition."""
    built = {"deployer": deployer_policy(s), "runner": runner_policy(s), "job-role": job_role_policy(s),
             "job-role-trust": trust_policy(s)}
    return {name: in_partition(document, s.region) for name, document in built.items()}
