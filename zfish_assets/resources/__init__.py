"""The resource classes, and only those: each resource key's local and AWS implementations side by
side (lake, catalog, query side, engine, simulator), the AWS ones sharing one `AWSConnection`.
`deployments.py` decides which serves each key."""
