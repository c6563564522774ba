"""The job's read on S3 (moto's server), fetched where `read.placement` puts it: exactly the raw files' lines come back.

Two days of observation files, laid out as labs deliver them (one to three rows a file, blank lines,
CRLF, a byte-order mark, no final newline, an undeclared field, names with `#`, `?`, `%`, spaces and
non-ASCII letters), beside files no engine reads (hidden, `_SUCCESS`, a text file, a subfolder) and
one broken line the crawl quarantines. They are crawled by the crawl's own S3 reads, then read by
`read_days` through a recording proxy, once as the small read it is (the driver fetches) and once
past the driver's share (the executors fetch). The rows expected are the records this test wrote,
kept aside as it wrote them (no pipeline code computes them).
"""

from __future__ import annotations

import json
import random
from urllib.parse import unquote

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from glue_scripts.zfish_etl import read
from zfish_assets_tests.support.aws_proxy import AwsProxy
from zfish_assets_tests.support.moto import REGION

BUCKET = "zfish-s3-read"
PREFIX = "labs/read-test"
DAYS = ("2025-05-01", "2025-05-02")
FILES_PER_DAY = 30
NAMES = ("img #{n}.json", "q?{n}=1.json", "p%41-{n}.json", "é-{n}.json", "plain-{n}.json", "a b+c-{n}.json")
NOT_READ = {".hidden.json": b'{"x": 1}\n', "_SUCCESS": b"", "notes.txt": b"not data\n",
            "sub/nested.json": b'{"fish_id": "zfish_Z"}\n'}


def observation(rng: random.Random, day: str, image: str) -> dict:
    return {"fish_id": f"zfish_{rng.choice('ABCDEFGH')}", "image_id": image, "timestamp": f"{day}T{rng.randrange(24):02d}:"
            f"{rng.randrange(60):02d}:00Z", "age_days": rng.randrange(1, 90), "treatment": rng.choice(["drug_a", "control"]),
            "genetic_markers": {g: round(rng.uniform(-3, 3), 3) for g in ("gene_a", "gene_b", "gene_c")},
            "length_mm": round(rng.uniform(1, 9), 2), "sex": rng.choice("FM")}


def delivery(rng: random.Random, day: str, files: int) -> tuple[dict[str, bytes], list[dict]]:
    """A day's files (name -> bytes) and the records their good lines hold."""
    contents, records = {}, []
    for n in range(files):
        rows = [observation(rng, day, f"img-{day}-{n}-{i}") for i in range(rng.randint(1, 3))]
        records += rows
        lines = [json.dumps({**r, "microscope": "m-7"} if rng.random() < 0.2 else r) for r in rows]
        if rng.random() < 0.3:
            lines.insert(rng.randrange(len(lines) + 1), "   ")  # a blank line: no row
        end = "\r\n" if rng.random() < 0.3 else "\n"
        text = end.join(lines) + (end if rng.random() < 0.7 else "")
        contents[NAMES[n % len(NAMES)].format(n=n)] = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + text.encode()
    contents["broken.json"] = b'{"fish_id": "zfish_A", "image_id": "img-broken", "timest\n'  # quarantined by the crawl
    return contents, records


@pytest.fixture(scope="module")
def lake_on_s3(moto_url, tmp_path_factory):  # noqa: F811 (fixture)
    """A bucket of two delivered days, crawled by S3Lake (through a recording proxy) into a local catalog."""
    from glue_scripts.zfish_etl import aws
    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.resources.aws_connection import AWSConnection
    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.resources.lake import S3Lake

    root = tmp_path_factory.mktemp("s3-read")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION}.items():
            mp.setenv(name, value)
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
        s3.create_bucket(Bucket=BUCKET)
        rng, expected = random.Random(18), []
        for day in DAYS:
            contents, records = delivery(rng, day, files=FILES_PER_DAY)
            expected += [{**r, "day": day} for r in records]
            for name, data in {**contents, **NOT_READ}.items():
                s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/observations/day={day}/{name}", Body=data)
        proxy = AwsProxy(moto_url)
        lake = S3Lake(bucket=BUCKET, prefix=PREFIX, aws=AWSConnection(region_name=REGION, endpoint_url=proxy.url),
                      cache_dir=str(root / "cache"))
        catalog = LocalCatalog(root=str(root / "catalog"))
        crawled = [crawl_day(lake, catalog, "observations", day) for day in DAYS]
        aws.use_endpoint(proxy.url, REGION)
        try:
            yield catalog, proxy, expected, crawled
        finally:
            aws.use_endpoint("", "")
            proxy.close()
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
            for start in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
            s3.delete_bucket(Bucket=BUCKET)


def test_placement_from_the_listing():
    """The rule: small reads stay on the driver; past it, remote objects are fetched by the executors
    and local files shipped to them; a few large remote objects are past it too (their bytes)."""
    small, objects = read.DRIVER_JUDGED_BYTES, read.DRIVER_FETCHED_OBJECTS
    assert read.placement(objects, small, remote=True) is read.Where.DRIVER
    assert read.placement(objects + 1, small, remote=True) is read.Where.EXECUTORS
    assert read.placement(3, small + 1, remote=True) is read.Where.EXECUTORS
    assert read.placement(10 * objects, small, remote=False) is read.Where.DRIVER
    assert read.placement(3, small + 1, remote=False) is read.Where.SHIPPED



@given(files=st.integers(0, 10**7), size=st.integers(0, 2**40), remote=st.booleans(),
       more_files=st.integers(0, 10**6), more_bytes=st.integers(0, 2**30))
def test_a_larger_read_never_moves_back_to_the_driver(files, size, remote, more_files, more_bytes):
    """Whatever the listing: local files are never fetched by executors nor S3 objects shipped from
    the driver, and a read with more files or more bytes is never placed on the driver when a
    smaller one is not (no size at which growing a day would make the driver fetch it again)."""
    where = read.placement(files, size, remote)
    assert where in ((read.Where.DRIVER, read.Where.EXECUTORS) if remote else (read.Where.DRIVER, read.Where.SHIPPED))
    if where is not read.Where.DRIVER:
        assert read.placement(files + more_files, size + more_bytes, remote) is where
    if size > read.DRIVER_JUDGED_BYTES:
        assert where is not read.Where.DRIVER

@pytest.mark.parametrize("fetched_by", ["driver", "executors"])
def test_every_data_object_fetched_once_where_placed_and_exactly_its_lines_read(lake_on_s3, spark, fetched_by):
    from glue_scripts.zfish_etl.aws import EXECUTOR_AGENT

    catalog, proxy, expected, crawled = lake_on_s3
    assert [c.rows for c in crawled] == [sum(r["day"] == d for r in expected) for d in DAYS]
    assert all(c.judged.quarantined_rows() >= 1 for c in crawled)  # the broken line (and the nested file)
    data_keys = {f"/{BUCKET}/{PREFIX}/observations/day={d}/{n}" for d in DAYS
                 for n in [*(NAMES[i % len(NAMES)].format(n=i) for i in range(FILES_PER_DAY)), "broken.json"]}
    proxy.requests.clear()

    with pytest.MonkeyPatch.context() as mp:
        if fetched_by == "executors":  # the same read, past the driver's share of remote objects
            mp.setattr(read, "DRIVER_FETCHED_OBJECTS", len(data_keys) - 1)
        rows = read.read_days(spark, catalog.get_table("observations"))
    try:
        got = sorted((r.asDict(recursive=True) for r in rows.collect()), key=lambda r: r["image_id"])
    finally:
        rows.unpersist()
    assert got == sorted(expected, key=lambda r: r["image_id"])

    gets = [r for r in proxy.requests if r.method == "GET" and r.path.startswith(f"/{BUCKET}/{PREFIX}/observations/")
            and "list-type" not in r.query]
    assert sorted(unquote(r.path) for r in gets) == sorted(data_keys)  # each data file once (the broken one too), nothing else
    by_executors = [EXECUTOR_AGENT in r.headers.get("user-agent", "") for r in gets]
    assert all(by_executors) if fetched_by == "executors" else not any(by_executors)
