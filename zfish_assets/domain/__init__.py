"""The domain: crawling a day into the catalog and the quarantine of what cannot be used.

Plain functions over a `Lake` and a `Catalog` (resources), judged by the one contract in
`glue_scripts/zfish_etl/contract.py`; no Dagster definitions here.
"""
