"""What stops a process at start with one clear line instead of a traceback: the same line from
`bridge serve`, `bridge worker` and the web process uvicorn starts from the Procfile."""

from __future__ import annotations

from bridge.config.policy_file import PolicyError
from bridge.config.redis_url import RedisUrlError
from bridge.config.settings import SettingsError

# A bad environment or policy file; each message names the variable or key and repeats no secret.
# (RedisUrlError: REDIS_URL or REDIS_CLUSTER as the operator's commands read them, without Settings.)
STARTUP_ERRORS = (SettingsError, PolicyError, RedisUrlError)
EXIT_CODE = 2


def startup_error_line(error: Exception) -> str:
    return f"bridge: {error}"
