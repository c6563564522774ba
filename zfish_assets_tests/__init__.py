"""The suite, one folder per area of the package (foundation, domain, engines, resources, assets,
automation, tools), and reliability/: the end-to-end reliability suite across them."""
