"""Helpers of tests/helm/run_chart.py: the chart's workloads run as local processes (see that script's docstring)."""
