"""The Spark settings the job needs from its session, stated once (Spark-free, so both sides read them).

Hudi's Kryo serializer and registrator, its SQL extension and catalog, and UTC: the local session
is built with them (`zfish_assets/backends/spark_session.py`), and the deployed Glue job gets them
as its `--conf` argument (`zfish deploy`), since a Glue job's session is made before its script runs.
"""

from __future__ import annotations

SESSION_CONF: dict[str, str] = {
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
    "spark.kryo.registrator": "org.apache.spark.HoodieSparkKryoRegistrar",
    "spark.sql.extensions": "org.apache.spark.sql.hudi.HoodieSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.hudi.catalog.HoodieCatalog",
    "spark.sql.hive.convertMetastoreParquet": "false",
    "spark.sql.session.timeZone": "UTC",
}


def glue_conf_argument(conf: dict[str, str] = SESSION_CONF) -> str:
    """`conf` as the value of a Glue job's `--conf` argument: Glue takes one value, so every setting
    after the first rides in it as ` --conf key=value`."""
    return " --conf ".join(f"{key}={value}" for key, value in conf.items())


def emrfs_encryption_conf(kms_key_arn: str) -> dict[str, str]:
    """Spark settings that make a Glue job's `s3://` writes (EMRFS) SSE-KMS with `kms_key_arn` (none without a key)."""
    if not kms_key_arn:
        return {}
    return {"spark.hadoop.fs.s3.enableServerSideEncryption": "true",
            "spark.hadoop.fs.s3.serverSideEncryption.kms.keyId": kms_key_arn}


def s3a_encryption_conf(kms_key_arn: str) -> dict[str, str]:
    """Hadoop settings (no `spark.hadoop.` prefix) that make s3a's writes SSE-KMS with `kms_key_arn` (Hadoop 3.3's names)."""
    if not kms_key_arn:
        return {}
    return {"fs.s3a.server-side-encryption-algorithm": "SSE-KMS", "fs.s3a.server-side-encryption.key": kms_key_arn}
