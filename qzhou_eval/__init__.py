"""qzhou-eval: reproduce the QZhou embedding models' MTEB / CMTEB scores on mteb 2.x."""

__version__ = "0.2.0"
