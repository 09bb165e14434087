"""Alerts: conditions the worker watches, and their delivery to a Slack/Discord webhook."""
