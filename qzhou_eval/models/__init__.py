"""Backbones: text token ids in, one pooled float32 vector per text out."""
