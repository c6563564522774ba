"""Helpers the test modules share: plain functions, constants and classes (fixtures stay in conftest.py).

A test module imports from here, never from another test module or from a conftest
(`foundation/test_test_layout.py` holds the rule)."""
