"""SLA timers and scheduled reports."""
