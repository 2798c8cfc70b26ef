"""pingjing domain: aggregates, events, policies and the application (no infrastructure)."""
