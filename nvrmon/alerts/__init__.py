"""Alerts: incidents from committed changes, acknowledgement, maintenance windows, and notifications out."""
