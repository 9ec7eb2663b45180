"""The relay benchmark's parts; bench/relay.py is the command line.

common       credentials, synthetic messages and markers, percentiles, bounded waits
system       CPU and machine readings from /proc, which process owns a socket
rig          the processes and fakes a run starts (redis-server, web, worker, bare endpoint)
seen         which markers reached a fake, and when (read incrementally)
http_client  a small HTTP/1.1 keep-alive client for open-loop load
loadgen      the load generator process (open-loop blocks of signed LINE webhooks)
webhook      webhook answer time: phase 1/1b, and bridge vs bare endpoint in interleaved blocks
latency      relay time LINE->Slack and Slack->LINE
controls     /escalate commands and escalate buttons
throughput   closed-loop throughput (phase 4) and the sustained open-loop run
redis_count  Redis round trips and commands by process (ss, INFO, MONITOR)
bare_app     the bare FastAPI endpoint that only verifies the LINE signature
report       the table of the phase run
targets      the issue's speed targets: one run, one table, PASS/MISS
"""
