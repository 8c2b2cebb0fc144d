"""Hydra configuration: where ``conf/`` lives, composing it, and the app entry point."""

from qzhou_eval.config.app import CONF_DIR, compose_config, hydra_app

__all__ = ["CONF_DIR", "compose_config", "hydra_app"]
