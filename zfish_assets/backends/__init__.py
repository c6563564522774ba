"""The machinery the resources drive: Spark sessions (in process or the warm Spark Connect engine),
the job code's digest and its content-addressed objects, polling of cloud runs, Glue runs through
Dagster Pipes (`glue_pipes`), and hudi-rs reads.

No resource classes here (they are in `resources/`), and no Dagster definitions.
"""
