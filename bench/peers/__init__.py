"""Minimal servers that ``bench.fanout`` measures the relay against."""
