"""HTTP layer: `create_app(settings)` serves the answer API, OpenAI-compatible chat and a page."""

from qa.api.app import create_app
from qa.api.schemas import passage_out

__all__ = ["create_app", "passage_out"]
