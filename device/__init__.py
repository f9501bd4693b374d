"""On-device half of edgesplit: ONNX Runtime sessions, workloads, quantisation and benchmarks.

This package must not import ``cloud`` or ``sim``: a Raspberry Pi installs only the
``device`` extra.
"""
