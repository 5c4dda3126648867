"""Supporters: the readers who give, and (later) their accounts."""
