"""The assets, one module per pipeline step (land, crawl, join, training set), each step's checks beside it."""
