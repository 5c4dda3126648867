"""Campaigns: the appeals readers give to, their pages and their progress."""
