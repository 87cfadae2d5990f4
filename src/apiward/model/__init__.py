"""Shared types of every stage: the canonical event and findings."""

from apiward.model.call import Actor, ApiCall, Message, Peer, Request, Response, Workload
from apiward.model.finding import SEVERITIES, Finding

__all__ = ["Actor", "ApiCall", "Finding", "Message", "Peer", "Request", "Response", "SEVERITIES", "Workload"]
