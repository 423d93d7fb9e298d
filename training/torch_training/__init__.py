"""The PyTorch image classifier's training, one module per concern.

``image_classifier_torch.py`` (the script SageMaker runs) parses flags and wires these together:
``distributed`` (one process or one of torchrun's), ``data`` (image files to normalised batches,
sharded per rank), ``model`` (architecture, pretrained backbone, optimiser, mixed precision),
``loop`` (epochs, evaluation, spot-safe checkpoints, health checks) and ``outputs`` (the model
dir, curves, health report and profile). Imported as a top-level package, as ``common`` is: the
job's working directory is ``source_dir``, the training/ folder.
"""
