"""Prompts: staff-made appeals shown on the newsroom's article pages to a segment of readers
(issue 13). Models, the decision (``decide``), results, and the embed endpoints embed.js calls."""
