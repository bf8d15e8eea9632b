"""Simulators of the three cases: real vendor wire formats, believable signals, faults, ground truth.

The data flow is simulators -> broker -> ingest: everything here *encodes*; nothing imports
the ingest's decoders, so a bug cannot hide on both sides at once.
"""
