"""Every name the fleet uses on NATS, defined once: the findings stream and its subjects, the
coordinator's consumer, the key-value buckets, the lease key and the reply inboxes. The
permissions in the README's "Several machines" are written against these.
"""

from __future__ import annotations

CONSUMER = "coordinator"
"""The durable pull consumer the active coordinator takes findings from."""
LEASE_KEY = "coordinator"
"""In the lease bucket: the host whose coordinator is active, while it renews it."""
REPLICAS = 3
"""Streams and buckets are replicated this many times where the cluster has the nodes."""
MAX_FINDING_AGE = 30 * 86400
"""Seconds an unconsumed finding stays in the stream (a month without any coordinator)."""
PUBLISH_DEDUP_WINDOW = 2 * 3600
"""Seconds the stream remembers a finding's Nats-Msg-Id: a forwarder killed after publishing
and before deleting the file publishes it again within this (any heartbeat), deduplicated."""


def findings_stream(config: str) -> str:
    return f"vigil-{config}-findings"


def findings_subject(config: str, host: str) -> str:
    """What `host` publishes its findings to; `*` for `host`: every host's."""
    return f"vigil.{config}.findings.{host}"


def state_bucket(config: str) -> str:
    """The active coordinator's state directory, one key per file (runner.fleet.mirror)."""
    return f"vigil-{config}-state"


def lease_bucket(config: str) -> str:
    """Keys here vanish `fleet.lease` after their last write."""
    return f"vigil-{config}-lease"


def hosts_bucket(config: str) -> str:
    """Each host's latest report (its jobs' runs, its generation), under its own name."""
    return f"vigil-{config}-hosts"


def spend_bucket(config: str) -> str:
    """The fleet's spend ledger, one key per month (`spend-YYYY-MM`): every host's model calls
    against the config's budgets (runner.fleet.spendstore)."""
    return f"vigil-{config}-spend"


def inbox_prefix(config: str, host: str) -> str:
    """Replies to `host` arrive under this prefix: its credentials subscribe to nothing else."""
    return f"_INBOX.vigil.{config}.{host}"


def kv_subject(bucket: str, key: str) -> str:
    """What a key of `bucket` is written to (`>`: every key)."""
    return f"$KV.{bucket}.{key}"


def permissions(config: str, host: str, *, coordinator: bool) -> dict[str, dict[str, list[str]]]:
    """What `host`'s NATS user may do, as nats-server's `permissions` of a user: publish its own
    findings and its own report, read every host's report and who coordinates (`vigil status
    --fleet`), book model spend in the fleet's ledger, and receive replies on its own inbox.
    A host that may run the coordinator also reads the findings and keeps the state and the
    lease (the JetStream API and acknowledgements). No host can publish as another, or read
    others' findings."""
    publish = [findings_subject(config, host), kv_subject(hosts_bucket(config), host)]
    for bucket in (hosts_bucket(config), lease_bucket(config)):
        publish += [f"$JS.API.STREAM.INFO.KV_{bucket}", f"$JS.API.STREAM.MSG.GET.KV_{bucket}"]
    # The fleet's spend ledger: every host's model calls book in it (a coordinator makes it:
    # a host that could change that stream could make it store others' replies).
    spend = spend_bucket(config)
    publish += [kv_subject(spend, ">")]
    publish += [f"$JS.API.STREAM.{verb}.KV_{spend}" for verb in ("INFO", "MSG.GET")]
    if coordinator:
        publish += [
            "$JS.API.>",
            f"$JS.ACK.{findings_stream(config)}.>",
            f"$JS.ACK.*.*.{findings_stream(config)}.>",  # the form with domain and account
            kv_subject(state_bucket(config), ">"),
            kv_subject(lease_bucket(config), ">"),
        ]
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": [f"{inbox_prefix(config, host)}.>"]},
    }
