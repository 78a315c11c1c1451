"""Alerts: incident transitions routed to channels, grouped by site, delivered through a durable outbox."""
