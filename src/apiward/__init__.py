"""apiward: discover, learn, detect and hunt from real API traffic."""

from apiward.model import ApiCall, Finding, Request, Response

__version__ = "0.1.0"

__all__ = ["ApiCall", "Finding", "Request", "Response", "__version__"]
