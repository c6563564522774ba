"""The policies `zfish deploy --policy-out` writes, for any text in the settings they name.

Every setting that reaches an ARN (the bucket, the lake prefix, the database, the job, the role, the
Athena workgroup and output, the KMS key) either is refused, in a line naming the variable, or is
written into ARNs of the forms each service documents, with no wildcard beyond the ones the policies
mean: any account, every object under a folder, every table of the database, every stream of a log
group. A `*` or `?` that came from a setting would widen a grant; a malformed ARN would deny it.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st

from zfish_assets_tests.support.iam_replay import Need, allowed

NAME = r"[A-Za-z0-9._-]+"
SEGMENTS = r"[A-Za-z0-9_][A-Za-z0-9_.=-]*(/[A-Za-z0-9_][A-Za-z0-9_.=-]*)*"
# The forms of each service's ARNs (the Service Authorization Reference), the meant wildcards spelled out.
FORMS = [
    rf"arn:P:s3:::[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9](/{SEGMENTS}(/\*)?|/\*)?",
    r"arn:P:glue:[a-z0-9-]+:\*:(catalog|database/[a-z0-9_]+|table/[a-z0-9_]+/(\*|[a-z_]+)"
    rf"|crawler/[a-z0-9_]+-(observations|outcomes)|job/{NAME})",
    rf"arn:P:athena:[a-z0-9-]+:\*:workgroup/{NAME}",
    r"arn:P:logs:[a-z0-9-]+:\*:log-group:/aws-glue/(\*|jobs/output)(:log-stream:\*)?",
    r"arn:P:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]+",
    r"arn:P:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+",
]
PARTITIONS = {"us-east-1": "aws", "eu-west-3": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"}


def well_formed(region: str) -> re.Pattern:
    """The forms, in the region's partition (every ARN there starts `arn:<partition>:`)."""
    return re.compile("|".join(f"(?:{form.replace('arn:P:', f'arn:{PARTITIONS[region]}:')})" for form in FORMS))


ODD = "abz019.-_/:*? AZé"
SETTINGS = {  # each variable: values a user may well write, and any text of a troublesome alphabet
    "ZFISH_S3_BUCKET": ["zfish-lake", "my.dotted.bucket", "s3://zfish-lake", "zfish-lake/", "Zfish-Lake", "a*"],
    "ZFISH_LAKE_PREFIX": ["use-cases/fish-demo", "/a/b/", "a//b", "a/*", "x?y", "dé/jà"],
    "ZFISH_DATABASE": ["zebra_fish_demo", "Zebra", "db*"],
    "ZFISH_GLUE_JOB_NAME": ["zfish-joined-fish-data", "*", "job?", "my job", "job/x"],
    "ZFISH_GLUE_ROLE_ARN": ["arn:aws:iam::000000000000:role/zfish-job", "arn:aws:iam::000000000000:role/*",
                            "arn:aws-cn:iam::000000000000:role/zfish-job", "arn:aws-us-gov:iam::000000000000:role/r",
                            "arn:aws:iam::000000000000:role/", "arn:aws:iam::000000000000:user/bob",
                            "arn:aws:iam::000000000000:role/path/r"],
    "ZFISH_ATHENA_WORKGROUP": ["primary", "*", "my wg", "wg/x"],
    "ZFISH_ATHENA_OUTPUT": ["", "s3://athena-results", "s3://athena-results/q/", "s3://", "/tmp/results",
                            "s3://b-1/x*y/", "S3://b/x/", "s3://b-1/a//c/"],
    "ZFISH_KMS_KEY_ARN": ["", "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                          "arn:aws-cn:kms:cn-north-1:000000000000:key/1234abcd", "arn:aws:kms:eu-west-3:000000000000:key/k",
                          "arn:aws:kms:us-east-1:000000000000:alias/zfish"],
}


_FIRST = {variable: values[0] for variable, values in SETTINGS.items()}  # a value each that AWS takes


def _values(variable: str):
    return st.one_of(st.sampled_from(SETTINGS[variable]), st.text(alphabet=ODD, min_size=1, max_size=10))


def _resources(documents: dict) -> list[str]:
    return [r for name, doc in documents.items() if name != "job-role-trust" for statement in doc["Statement"]
            for r in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])]


def test_every_setting_is_refused_naming_it_or_written_as_well_formed_arns_without_wildcards(monkeypatch):
    from zfish_assets import settings
    from zfish_assets.tools.deploy import DeploySettings
    from zfish_assets.tools.policies import policies

    monkeypatch.setenv("ZFISH_QUERY", "athena")

    @hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.fixed_dictionaries({variable: _values(variable) for variable in SETTINGS}),
           st.sampled_from(["spark", "glue"]), st.sampled_from(["partitions", "crawler"]), st.sampled_from(list(PARTITIONS)))
    @example({**_FIRST, "ZFISH_GLUE_ROLE_ARN": "arn:aws-cn:iam::000000000000:role/zfish-job",
              "ZFISH_KMS_KEY_ARN": "arn:aws-cn:kms:cn-north-1:000000000000:key/1234abcd"}, "glue", "crawler", "cn-north-1")
    @example({**_FIRST, "ZFISH_GLUE_ROLE_ARN": "arn:aws-us-gov:iam::000000000000:role/r"}, "spark", "partitions",
             "us-gov-west-1")
    def check(values, engine, crawl_mode, region):
        with monkeypatch.context() as env:
            for variable, value in {**values, "ZFISH_ENGINE": engine, "ZFISH_CRAWL_MODE": crawl_mode,
                                    "ZFISH_AWS_REGION": region}.items():
                env.setenv(variable, value)
            try:
                settings.check_set()  # what every command does first
                documents = policies(DeploySettings.from_env())
            except ValueError as exc:  # refused: one line naming the variable
                message = str(exc)
                assert "\n" not in message and re.match(r"^(ZFISH_[A-Z0-9_]+=|zfish deploy needs ZFISH_)", message), message
                return
        bad = [r for r in _resources(documents) if not well_formed(region).fullmatch(r)]
        assert not bad, (values, region, bad)
        trust = documents["job-role-trust"]["Statement"][0]["Condition"]["ArnLikeIfExists"]["aws:SourceArn"]
        assert trust == f"arn:{PARTITIONS[region]}:glue:{region}:{values['ZFISH_GLUE_ROLE_ARN'].split(':')[4]}:*"

    check()


@pytest.mark.parametrize("engine, crawl_mode", [("glue", "partitions"), ("spark", "crawler")])
def test_every_statement_that_writes_objects_may_abort_their_multipart_uploads(engine, crawl_mode):
    """boto3's transfers and s3a write large objects in parts; an upload that fails is aborted, and a principal
    that may not abort leaves its parts billed in the bucket."""
    from zfish_assets.tools.deploy import DeploySettings
    from zfish_assets.tools.policies import policies

    s = DeploySettings(bucket="lake", region="us-east-1", endpoint_url="", prefix="p", database="db", job_name="j",
                       role_arn="arn:aws:iam::000000000000:role/r", engine=engine, crawl_mode=crawl_mode,
                       query="athena")
    for name, doc in policies(s).items():
        for statement in doc["Statement"] if name != "job-role-trust" else []:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if "s3:PutObject" in statement["Action"]:
                for arn in (r for r in resources if r.endswith("/*")):
                    key = arn.removesuffix("*") + "part.bin"
                    assert allowed(doc, Need("s3:AbortMultipartUpload", key)), (name, statement["Sid"])
