"""Interim logger: stderr only. The logging issue replaces this with the JSON socket handler."""

from __future__ import annotations

import logging


def get_logger(name: str, log_host: str | None = None, log_port: int | None = None, level: int | str = logging.INFO) -> logging.Logger:
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger
