"""What the bridge exposes to Prometheus: the web's webhook counts, the state in Redis read at
scrape time, the worker's deliveries and timers, and the worker's own metrics server."""
