"""The `zfish` command and what only it runs: the demo, in-process runs, deployment to AWS and its
policies, the local Dagster instance, `zfish check`, and progress output. Nothing below imports it.
"""
