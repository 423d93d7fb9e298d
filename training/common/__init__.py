"""Pieces shared by every training script."""
