"""Sample datasets and configurations built on ``mrcnn``."""
