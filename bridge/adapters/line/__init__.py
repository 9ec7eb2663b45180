"""The LINE adapter: webhook verification and parsing, and the Messaging API client."""
