"""On-disk embedding store: resumable runs and MRL sweeps from one encoding pass."""

from qzhou_eval.store.disk import DiskStore, model_fingerprint, store_folder

__all__ = ["DiskStore", "model_fingerprint", "store_folder"]
