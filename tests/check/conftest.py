from tests.models.conftest import tiny_qwen2  # noqa: F401  (the tiny model fixture)
