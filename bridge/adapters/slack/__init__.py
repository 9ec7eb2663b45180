"""The Slack adapter: verification, the Bolt listeners, event parsing, views, the Web API client."""
