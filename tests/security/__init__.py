"""Security tests: each one a way an attacker would try it (issue 11)."""
