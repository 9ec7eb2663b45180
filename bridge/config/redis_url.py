"""REDIS_URL (and REDIS_CLUSTER) -> where the bridge's Redis is: one server or a Redis Cluster.

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or ``unix://``: one server;
- ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (``rediss+cluster://`` for TLS):
  a Redis Cluster, reached first at any of these nodes (the client then asks them for the rest);
- a ``redis://`` or ``rediss://`` URL with ``REDIS_CLUSTER=1``: a Redis Cluster reached first at
  that one node.

Pure: nothing here connects (adapters/redis/connect.py makes the client). A URL that cannot name a
Redis is refused with a message that says what is wrong and never repeats the URL, which may
carry a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from redis.connection import parse_url

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_PORT = 6379
_SINGLE_SCHEMES = ("redis", "rediss", "unix")
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_FLAG_VALUES = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


class RedisUrlError(ValueError):
    """REDIS_URL or REDIS_CLUSTER cannot name a Redis. The message names the variable, says what
    is wrong and repeats no part of the URL."""


@dataclass(frozen=True)
class RedisTarget:
    """One Redis server (nodes empty: url is the URL as given), or a Redis Cluster (nodes: the
    (host, port) of each node to ask first; url: a plain redis:// or rediss:// URL of the first,
    which carries the credentials, the TLS scheme and the query options for every node)."""

    url: str = field(repr=False)  # may carry a password
    nodes: tuple[tuple[str, int], ...] = ()

    @property
    def is_cluster(self) -> bool:
        return bool(self.nodes)


def cluster_flag(value: str) -> bool:
    """REDIS_CLUSTER's value: 1, true, yes, on (a cluster) or 0, false, no, off, empty (not)."""
    flag = _FLAG_VALUES.get(value.strip().lower()) if value.strip() else False
    if flag is None:
        raise RedisUrlError("REDIS_CLUSTER must be 1 (a Redis Cluster) or 0 (one Redis server)")
    return flag


def parse_redis_url(url: str, *, cluster: bool = False) -> RedisTarget:
    """Where REDIS_URL points (cluster: REDIS_CLUSTER is set). Raises RedisUrlError."""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    url = f"{scheme}://{rest}"
    if not sep or (scheme not in _SINGLE_SCHEMES and scheme not in _CLUSTER_SCHEMES):
        raise RedisUrlError(
            "REDIS_URL is not a Redis URL: it must start with redis://, rediss:// or unix:// (one server), or"
            " redis+cluster:// or rediss+cluster:// (a Redis Cluster: redis+cluster://host:port,host:port)"
        )
    if scheme in _CLUSTER_SCHEMES:
        return _cluster_target(_CLUSTER_SCHEMES[scheme], rest)
    if scheme == "unix":
        if cluster:
            raise RedisUrlError(
                "REDIS_URL is a unix:// socket, but REDIS_CLUSTER=1: a Redis Cluster is reached over TCP"
            )
        _options(url)
        return RedisTarget(url=url)
    if cluster:
        return _cluster_target(scheme, rest)
    _options(url)
    return RedisTarget(url=url)


def redis_target_from_environment(environ: Mapping[str, str]) -> RedisTarget:
    """The target the operator's commands use: REDIS_URL (default redis://localhost:6379/0) and
    REDIS_CLUSTER from the environment, as the web and worker processes read them."""
    return parse_redis_url(
        environ.get("REDIS_URL", DEFAULT_URL), cluster=cluster_flag(environ.get("REDIS_CLUSTER", ""))
    )


def _options(url: str) -> dict[str, object]:
    """What redis-py makes of a one-server URL (nothing connects); its database must be a number."""
    invalid = RedisUrlError(
        "REDIS_URL is not a valid Redis URL (redis://[[user]:password@]host[:port][/db], with a number"
        " for the port and the database)"
    )
    try:
        options: dict[str, object] = parse_url(url)  # type: ignore[no-untyped-call]  # (redis-py leaves it untyped)
    except ValueError:
        raise invalid from None
    path = urlsplit(url).path
    if not url.startswith("unix:") and path.strip("/") and not path.strip("/").isdigit():
        raise invalid
    return options


def _cluster_target(scheme: str, rest: str) -> RedisTarget:
    """A cluster's target from what follows scheme:// (nodes, then an optional /0 and ?options)."""
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hosts = netloc.rpartition("@")
    path = tail.partition("?")[0]
    if path not in ("", "/", "/0"):
        raise RedisUrlError("REDIS_URL names a database other than 0: a Redis Cluster has database 0 only")
    nodes = tuple(_node(part) for part in hosts.split(","))
    host, port = nodes[0]
    first = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{userinfo}{at}{first}:{port}{tail}"
    if _options(url).get("db", 0) not in (0, "0"):
        raise RedisUrlError("REDIS_URL names a database other than 0: a Redis Cluster has database 0 only")
    return RedisTarget(url=url, nodes=nodes)


def _node(text: str) -> tuple[str, int]:
    """host:port (port 6379 if left out; an IPv6 address in brackets)."""
    text = text.strip()
    well_formed = True
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        well_formed = bool(bracket) and (not after or after.startswith(":"))
        port_text = after[1:]
    else:
        host, _, port_text = text.partition(":")
    if not (well_formed and host and (not port_text or (port_text.isdigit() and 0 < int(port_text) < 65536))):
        raise RedisUrlError(
            "REDIS_URL has a cluster node that is not host:port (e.g. redis+cluster://10.0.0.1:7000,10.0.0.2:7000)"
        )
    return host, int(port_text) if port_text else DEFAULT_PORT
