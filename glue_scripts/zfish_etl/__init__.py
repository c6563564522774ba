"""The Glue job's code: plain PySpark, shared exactly by the Glue run and the local run.

Nothing here imports zfish_assets or dagster: the job ships alone to Glue.
"""
