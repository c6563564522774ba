"""The job's file access takes URIs as written: a raw file's name may hold any character the crawl
accepts (`#`, `?`, `%`, spaces), and the job must read that file, not the one a URL parser names."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl.judging import is_data_file
from glue_scripts.zfish_etl.files import _s3, join, list_folders, local_path, read_files

NAME = st.text(alphabet=string.ascii_letters + string.digits + " #?%&=+;@!$'()[]{}~.-_", min_size=1, max_size=20) \
    .map(lambda s: s + ".json").filter(is_data_file)


@given(names=st.lists(NAME, min_size=1, max_size=6, unique=True))
@settings(max_examples=40, deadline=None)
def test_every_listed_file_reads_back_its_own_bytes(tmp_path_factory, names):
    folder = tmp_path_factory.mktemp("day")
    for i, name in enumerate(names):
        (folder / name).write_bytes(f"{i}:{name}".encode())
    for base in (str(folder), folder.as_uri().replace("file:///", "file:/"), "file://" + str(folder)):
        listed = list_folders([base])[0]
        assert sorted(listed) == sorted(names)
        read = dict(read_files([join(base, n) for n in listed]))
        assert {local_path(uri).name: body.decode() for uri, body in read.items()} == \
            {n: f"{names.index(n)}:{n}" for n in names}


def test_an_s3_key_keeps_its_fragment_query_and_escapes():
    assert _s3("s3://lake/p/day=2025-04-05/img #1.json") == ("lake", "p/day=2025-04-05/img #1.json")
    assert _s3("s3a://lake/p/a?b=1%41.json") == ("lake", "p/a?b=1%41.json")
    assert _s3("/local/img #1.json") is None
