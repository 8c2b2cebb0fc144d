"""Hydra configuration: where the config folder lives, composing it, and the app entry point."""

from qzhou_eval.config.app import CONF_DIR, compose_config, config_dir, hydra_app

__all__ = ["CONF_DIR", "compose_config", "config_dir", "hydra_app"]
