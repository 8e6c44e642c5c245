"""What the fleet design relies on, shown on a real three-node JetStream cluster with the
official client: publishes deduplicated by `Nats-Msg-Id` (a forwarder's retry after a crash is
not a second finding), a replicated stream that takes publishes with one node dead, and a
key-value store whose compare-and-set lets exactly one writer win (the coordinator's lease and
state)."""

from __future__ import annotations

import asyncio

import pytest

from tests.nats_cluster import NatsCluster, nats_cluster  # noqa: F401 (the fixture)

nats = pytest.importorskip("nats")


async def connect(cluster: NatsCluster):  # type: ignore[no-untyped-def]
    return await nats.connect(servers=cluster.urls, connect_timeout=5, max_reconnect_attempts=60)


async def publish(js, subject: str, data: bytes, message_id: str):  # type: ignore[no-untyped-def]
    """A publish that waits for the stream's group to have a leader: a stream just created, or
    one whose leader's node just died, answers nothing until its replicas elect one."""
    for attempt in range(60):
        try:
            return await js.publish(subject, data, headers={"Nats-Msg-Id": message_id})
        except nats.errors.Error:  # no responders, no stream response, timeout: no leader yet
            await asyncio.sleep(0.05 * min(attempt + 1, 10))
    return await js.publish(subject, data, headers={"Nats-Msg-Id": message_id})


def test_a_retried_publish_is_one_message(nats_cluster: NatsCluster) -> None:  # noqa: F811
    async def scenario() -> tuple[bool, bool, int]:
        client = await connect(nats_cluster)
        try:
            js = client.jetstream()
            await js.add_stream(name="FINDINGS", subjects=["findings.>"], num_replicas=3)
            first = await publish(js, "findings.a", b"{}", "host-a/finding-1")
            again = await publish(js, "findings.a", b"{}", "host-a/finding-1")
            info = await js.stream_info("FINDINGS")
            return bool(first.duplicate), bool(again.duplicate), info.state.messages
        finally:
            await client.close()

    assert asyncio.run(scenario()) == (False, True, 1)


def test_a_replicated_stream_takes_publishes_with_a_node_dead(
    nats_cluster: NatsCluster,  # noqa: F811
) -> None:
    async def scenario() -> int:
        client = await connect(nats_cluster)
        try:
            js = client.jetstream()
            await js.add_stream(name="FINDINGS", subjects=["findings.>"], num_replicas=3)
            await publish(js, "findings.a", b"before", "1")
            nats_cluster.nodes[0].kill()
            await publish(js, "findings.a", b"after", "2")
            info = await js.stream_info("FINDINGS")
            return info.state.messages
        finally:
            await client.close()

    assert asyncio.run(scenario()) == 2


def test_compare_and_set_lets_one_writer_win(nats_cluster: NatsCluster) -> None:  # noqa: F811
    async def scenario() -> tuple[bytes, bool]:
        client = await connect(nats_cluster)
        try:
            kv = await client.jetstream().create_key_value(bucket="lease", replicas=3)
            revision = await kv.create("coordinator", b"host-a")
            await kv.update("coordinator", b"host-b", last=revision)
            try:
                await kv.update("coordinator", b"host-c", last=revision)  # a stale revision
                stale_write_refused = False
            except nats.js.errors.KeyWrongLastSequenceError:
                stale_write_refused = True
            entry = await kv.get("coordinator")
            return entry.value or b"", stale_write_refused
        finally:
            await client.close()

    assert asyncio.run(scenario()) == (b"host-b", True)
