"""Configuration: the environment (settings) and the policy file."""
