"""Releasing a run's persisted frames while its last steps run: released by the end, whatever happens."""

from __future__ import annotations

import pytest
from pyspark import StorageLevel

from glue_scripts.zfish_etl.session import KEPT, releasing


def kept(spark, n: int):
    frame = spark.range(n).persist(KEPT)
    frame.count()
    return frame


def test_the_frames_are_released_when_the_block_ends(spark):
    frames = [kept(spark, 11), kept(spark, 12)]
    with releasing([*frames, None]):
        assert spark.range(3).count() == 3  # the block's own Spark work runs beside the release
    assert all(frame.storageLevel == StorageLevel.NONE for frame in frames)


def test_a_failed_block_still_releases_them_and_fails(spark):
    frame = kept(spark, 13)
    with pytest.raises(ZeroDivisionError):
        with releasing([frame]):
            1 / 0
    assert frame.storageLevel == StorageLevel.NONE


def test_a_failed_release_fails_the_block(spark):
    class Broken:
        def unpersist(self):
            raise RuntimeError("unpersist failed")

    with pytest.raises(RuntimeError, match="unpersist failed"):
        with releasing([Broken()]):
            pass
