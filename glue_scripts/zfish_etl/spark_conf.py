"""The Spark settings the job needs from its session, stated once (Spark-free, so both sides read them).

Hudi's Kryo serializer and registrator, its SQL extension and catalog, and UTC: the local session
is built with them (`zfish_assets/engines/spark_session.py`), and the deployed Glue job gets them
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
