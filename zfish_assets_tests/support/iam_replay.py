"""Recorded AWS requests replayed through an IAM policy evaluator: what each needed, and whether it was allowed.

moto's own IAM enforcement cannot judge these policies: it authorizes Glue and Athena calls
against the resource `*` (so no resource-scoped statement ever matches) and evaluates no
condition keys of S3 (`s3:prefix`). So each request the proxy recorded is mapped to the IAM
actions, resource ARNs and condition keys AWS's Service Authorization Reference lists for it,
and every one must be allowed by an `Allow` statement of the principal's policy (the policies
have no `Deny`). A request this module cannot map fails the test: it must be taught, not skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from zfish_assets_tests.support.aws_proxy import Recorded

ACCOUNT = "123456789012"  # moto's account: what a request's ARNs name


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}" + (f" with {dict(self.context)}" if self.context else "")


def _s3(r: Recorded) -> list[Need]:
    bucket, _, key = r.path.lstrip("/").partition("/")
    from urllib.parse import unquote

    key, arn, q = unquote(key), f"arn:aws:s3:::{bucket}", r.query
    if not key:
        if r.method == "GET" and "location" in q:
            return [Need("s3:GetBucketLocation", arn)]
        if r.method in ("GET", "HEAD") and not ({"uploads", "versioning", "policy", "acl"} & set(q)):
            return [Need("s3:ListBucket", arn, (("s3:prefix", q.get("prefix", [""])[0]),))] if "prefix" in q \
                else [Need("s3:ListBucket", arn)]
        if r.method == "POST" and "delete" in q:
            keys = re.findall(rb"<Key>(.*?)</Key>", r.body)
            return [Need("s3:DeleteObject", f"{arn}/{k.decode()}") for k in keys]
        raise LookupError(f"no IAM mapping for S3 {r.method} {r.path}?{q}")
    obj = f"{arn}/{key}"
    if r.method in ("GET", "HEAD"):
        return [Need("s3:ListMultipartUploadParts" if "uploadId" in q else "s3:GetObject", obj)]
    if r.method in ("PUT", "POST"):
        source = r.headers.get("x-amz-copy-source")
        copied = [Need("s3:GetObject", f"arn:aws:s3:::{unquote(source).lstrip('/')}")] if source else []
        return [Need("s3:PutObject", obj), *copied]
    if r.method == "DELETE":
        return [Need("s3:AbortMultipartUpload" if "uploadId" in q else "s3:DeleteObject", obj)]
    raise LookupError(f"no IAM mapping for S3 {r.method} {r.path}")


DATABASE_OPS = {"GetDatabase", "CreateDatabase", "UpdateDatabase", "DeleteDatabase"}
TABLE_OPS = {"GetTable", "CreateTable", "UpdateTable", "DeleteTable", "GetPartition", "GetPartitions",
             "CreatePartition", "BatchCreatePartition", "UpdatePartition", "BatchUpdatePartition",
             "DeletePartition", "BatchDeletePartition", "BatchGetPartition"}
JOB_OPS = {"GetJob", "CreateJob", "UpdateJob", "StartJobRun", "GetJobRun", "GetJobRuns", "BatchStopJobRun"}
CRAWLER_OPS = {"GetCrawler", "CreateCrawler", "UpdateCrawler", "StartCrawler", "StopCrawler", "ListCrawls"}
PASSES_A_ROLE = {"CreateJob": ("Role",), "UpdateJob": ("JobUpdate", "Role"), "CreateCrawler": ("Role",),
                 "UpdateCrawler": ("Role",)}


def _glue(r: Recorded, op: str) -> list[Need]:
    body, arn = r.json(), f"arn:aws:glue:{r.region}:{ACCOUNT}:"
    catalog = Need(f"glue:{op}", f"{arn}catalog")
    if op in DATABASE_OPS:
        name = body.get("Name") or body["DatabaseInput"]["Name"]
        needs = [catalog, Need(f"glue:{op}", f"{arn}database/{name}")]
    elif op in TABLE_OPS or op == "GetTables":
        db = body["DatabaseName"]
        table = "*" if op == "GetTables" else body.get("TableName") or body.get("Name") or body["TableInput"]["Name"]
        needs = [catalog, Need(f"glue:{op}", f"{arn}database/{db}"), Need(f"glue:{op}", f"{arn}table/{db}/{table}")]
    elif op in JOB_OPS:
        needs = [Need(f"glue:{op}", f"{arn}job/{body.get('JobName') or body['Name']}")]
    elif op in CRAWLER_OPS:
        needs = [Need(f"glue:{op}", f"{arn}crawler/{body.get('Name') or body['CrawlerName']}")]
    else:
        raise LookupError(f"no IAM mapping for AWSGlue.{op}")
    if op in PASSES_A_ROLE:
        role = body
        for part in PASSES_A_ROLE[op]:
            role = role.get(part, {}) if isinstance(role, dict) else {}
        if role:
            needs.append(Need("iam:PassRole", role, (("iam:PassedToService", "glue.amazonaws.com"),)))
    return needs


def needs(r: Recorded, workgroups: dict[str, str]) -> list[Need]:
    """The IAM permissions request `r` needs; `workgroups` maps Athena query ids to their workgroup."""
    service, _, op = r.target.partition(".")
    if service == "s3":
        return _s3(r)
    if service == "AWSGlue":
        return _glue(r, op)
    if service == "Logs_20140328":
        body, arn = r.json(), f"arn:aws:logs:{r.region}:{ACCOUNT}:log-group:"
        if op == "DescribeLogStreams":
            return [Need(f"logs:{op}", f"{arn}{body['logGroupName']}")]
        if op == "GetLogEvents":
            return [Need(f"logs:{op}", f"{arn}{body['logGroupName']}:log-stream:{body['logStreamName']}")]
        raise LookupError(f"no IAM mapping for {r.target}")
    if service == "AmazonAthena":
        arn = f"arn:aws:athena:{r.region}:{ACCOUNT}:workgroup/"
        if op == "StartQueryExecution":
            group = r.json().get("WorkGroup", "primary")
            if r.status == 200:
                workgroups[json.loads(r.response)["QueryExecutionId"]] = group
        else:
            group = workgroups.get(r.json().get("QueryExecutionId", ""), "primary")
        return [Need(f"athena:{op}", arn + group)]
    raise LookupError(f"no IAM mapping for {r.target}")


def _values(element) -> list:
    return element if isinstance(element, list) else [element]


def _conditions_hold(condition: dict, context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        for key, wanted in keys.items():
            if key not in context:
                return False
            match = fnmatchcase if operator == "StringLike" else str.__eq__
            if operator not in ("StringLike", "StringEquals"):
                raise LookupError(f"condition operator {operator} is not evaluated here")
            if not any(match(context[key], w) for w in _values(wanted)):
                return False
    return True


def allowed(policy: dict, need: Need) -> bool:
    context = dict(need.context)
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            raise LookupError("Deny statements are not evaluated here")
        if not any(fnmatchcase(need.action.lower(), a.lower()) for a in _values(statement["Action"])):
            continue
        if not any(fnmatchcase(need.resource, p) for p in _values(statement["Resource"])):
            continue
        if _conditions_hold(statement.get("Condition", {}), context):
            return True
    return False


def wildcard_actions(policy: dict) -> list[str]:
    """Actions granted with a `*` in them (none may be)."""
    return [a for s in policy["Statement"] for a in _values(s["Action"]) if "*" in a]


# Requests a client makes that may be denied, each with why that is fine (and the test denying it on purpose).
TOLERATED = {
    ("s3:GetObject", "arn:aws:s3:::*/etc/hudi/conf/hudi-defaults.conf"):
        "hudi-rs looks for its global defaults file at the bucket root (HUDI_CONF_DIR) and reads on after a 403; "
        "test_aws_iam answers that request 403, as AWS would",
}


def tolerated(need: Need) -> bool:
    return any(need.action == action and fnmatchcase(need.resource, resource) for action, resource in TOLERATED)


def denied(requests: list[Recorded], policy_of: dict[str, dict]) -> list[str]:
    """Each need of each request (by a principal in `policy_of`, by access key) its policy does not allow."""
    workgroups: dict[str, str] = {}
    out = []
    for r in requests:
        if r.access_key not in policy_of:
            continue
        for need in needs(r, workgroups):
            if not allowed(policy_of[r.access_key], need) and not tolerated(need):
                out.append(f"{r.access_key}: {r.method} {r.target} {r.path} needs {need}")
    return out
