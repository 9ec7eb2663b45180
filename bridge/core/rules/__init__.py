"""The rules the bridge follows, one module per concept."""
