"""The serving containers' contract, in one place: what an artifact must hold and how it is called.

A ``model.tar.gz`` is served by an AWS container (TF Serving DLC; PyTorch artifacts bring their own
Ray Serve app). Two parts of this project must agree on that contract exactly: ``model_export``
(``verify`` calls the handler in-process before deploy) and ``local_stage`` (serves it over HTTP).
Both import it from here, so neither depends on the other:

- ``handler``: request/response types, the three-step handler interface, importing a handler
  script the way the container does.
- ``tfs``: the TF Serving container's contract (SavedModel discovery, ``inference.py`` handlers,
  the REST ``:predict`` body).
- ``batch_split``: merging concurrent requests' payloads into one model call and splitting it back.
- ``errors``: ``ContainerError``.

numpy is its only third-party import (TensorFlow only when a SavedModel is loaded).
"""
