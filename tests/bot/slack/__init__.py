"""Slack: installations, Block Kit rendering, the poster (against a mock Web API on 127.0.0.1)."""
