"""Serving-time handler modules, copied verbatim into an artifact's ``code/inference.py``.

They are self-contained on purpose: the serving containers import them on their own, with only the
standard library, torch, numpy and Pillow available (PyTorch) or the standard library alone
(TensorFlow Serving's Python front end). Nothing here may import ``model_export``.
"""
