"""Alerts: incidents derived from committed changes, acknowledgement and comments, maintenance windows."""
