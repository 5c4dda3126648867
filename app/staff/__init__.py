"""Staff: roles, campaign management, dashboards, supporter lookup, reports."""
