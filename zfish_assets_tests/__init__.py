"""The suite, laid out like the package: one folder per area of zfish_assets (foundation, domain,
engines, resources, io_managers, assets, automation, tools), zfish_etl/ for the job's modules
(glue_scripts/zfish_etl), reliability/ for the end-to-end reliability suite across them, and support/ for
the helpers test modules share (fixtures stay in conftest.py)."""
