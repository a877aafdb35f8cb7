"""The local workspace: the real bot against local stand-ins, shown in a browser page like a Slack channel."""
