"""Tests on a local two-node Ray cluster (one cluster for the package, torn down after it)."""
