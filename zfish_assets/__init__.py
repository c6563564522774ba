"""zfish: the Glue + Hudi zebrafish data lake as Dagster software-defined assets.

The package is laid out by role, in layers; a module imports only from its own layer or below
(`zfish_assets_tests/foundation/test_layout.py` holds the rule):

1. `glue_scripts/zfish_etl/` (outside this package): the job's code and what both sides share.
2. Foundation: `settings` (every `ZFISH_*` variable), `dagster_names` (asset keys, tags, metadata
   keys), `partitions`, `retries`, `runtimes`, `synthetic` (the simulated instrument).
3. `backends/`: the systems the resources drive, and how (Spark sessions, the warm engine's
   server, the job code's digest, Glue Pipes, polling, hudi-rs and DuckDB reads).
4. `resources/`: the resource classes, local and AWS side by side, sharing one `AWSConnection`:
   the lake, the catalog, the engine (what runs the join: local Spark or the Glue job) and the
   query side (DuckDB or Athena).
5. `domain/`: the crawl and the quarantine, over a lake and a catalog.
6. `io_managers/`, then `assets/` (one module per pipeline step, its checks beside it), then the
   automation (jobs, schedules, sensors), then `definitions` and `deployments`.
7. `tools/`: the `zfish` command and what only it runs (demo, deploy, policies, `zfish check`).
"""
