"""Giving: the donation form, gifts, recurring plans and the thank-you."""
