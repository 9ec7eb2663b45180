"""What happens when a deadline comes, one module per deadline."""
