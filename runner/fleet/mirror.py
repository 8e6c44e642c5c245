"""The active coordinator's state directory, file by file in a JetStream KV bucket.

The fleet coordinator runs the very same passes as a single machine's (runner.coordinator),
on a working directory; every file a pass writes (state/, outbox/, processing/) is put to the
bucket the moment it is durable on disk, before the pass goes on, with a compare-and-set on
the revision this coordinator last saw: the writes reach KV in the order the coordinator's
crash safety is built on, and a coordinator that lost its lease without knowing cannot
overwrite what its successor wrote. Files a pass removed are deleted from the bucket after
the pass: a successor that still finds one replays it, which the coordinator's design makes
a no-op (the same claim gives the same message ids; the ledger knows what went out).

A coordinator that takes office writes the bucket into a fresh working directory.
"""

from __future__ import annotations

import os
import shutil
from base64 import urlsafe_b64decode, urlsafe_b64encode

from runner import fsatomic
from runner.contract import OUTBOX, PROCESSING, REJECTED, STATE, TMP
from runner.fleet.client import NatsError
from runner.fleet.jetstream import WRONG_LAST_SEQUENCE, JetStream, JetStreamError
from runner.fleet.names import kv_subject
from runner.intake import ATTEMPTS

TYPE_CHECKING = False  # `typing` costs ~3 ms at start-up: mypy reads this block, Python skips it
if TYPE_CHECKING:
    from collections.abc import Callable

MIRRORED = (STATE, OUTBOX, PROCESSING)
"""The working directory's parts that live in KV; the inbox, tmp/ and runs.jsonl stay local."""
LOCAL = (ATTEMPTS,)
"""Under state/, kept on this host only: how often this host's coordinator took up each
claim. A claim that kills the coordinator is set aside after a few tries here, while a pass
that failed because NATS did (its count can then not be taken back in KV) is no strike."""
SAFE_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./")
HEADROOM = 512
"""Bytes of a KV write that are not the file (subject, headers)."""
ENCODED = "b64/"
"""Prefix of a key whose path had characters KV keys cannot hold."""


class LostLease(NatsError):
    """Another coordinator wrote where this one thought it was alone: it is not active."""


class Mirror:
    def __init__(
        self, stream: JetStream, bucket: str, work_dir: str, valid: Callable[[], bool]
    ) -> None:
        self.stream = stream
        self.valid = valid
        """Whether this coordinator's lease still holds: asked before every write, so one
        that stalled (or slept) past it writes nothing its successor does not expect."""
        self.bucket = bucket
        self.work_dir = work_dir
        self.revisions: dict[str, int] = {}
        """Key -> the revision this coordinator last wrote or read (deleted keys too)."""
        self.present: set[str] = set()
        self.pending: dict[str, str] = {}
        """Key -> the reply subject of its write on its way to the bucket."""

    def key_of(self, path: str) -> str | None:
        relative = os.path.relpath(path, self.work_dir)
        parts = relative.split(os.sep)
        if parts[0] not in MIRRORED or parts[:2] == [STATE, REJECTED] or len(parts) < 2:
            return None
        if parts[0] == STATE and parts[1:] and parts[1] in LOCAL:
            return None
        if any(part.startswith(".") for part in parts):
            return None  # locks and temp names
        key = "/".join(parts)
        if set(key) <= SAFE_KEY and not key.endswith("."):
            return key
        return ENCODED + urlsafe_b64encode(relative.encode()).decode()

    def path_of(self, key: str) -> str:
        if key.startswith(ENCODED):
            relative = urlsafe_b64decode(key.removeprefix(ENCODED)).decode()
        else:
            relative = key.replace("/", os.sep)
        path = os.path.normpath(os.path.join(self.work_dir, relative))
        if not path.startswith(self.work_dir + os.sep):
            raise NatsError(f"key {key!r} of {self.bucket} leads outside the state directory")
        return path

    # -- while active ----------------------------------------------------------------------

    def wrote(self, path: str, data: bytes) -> None:
        """fsatomic.mirror: put the file just written (compare-and-set), without waiting for
        the bucket to take it: settle() waits, before anything leaves the coordinator (a
        channel is sent to, findings are acknowledged). The bucket is one stream, which
        stores one connection's writes in order: a coordinator killed in between leaves its
        successor a prefix of them, as a kill leaves the local directory."""
        key = self.key_of(path)
        if key is None:
            return
        self.check()
        if key in self.pending:  # its compare-and-set needs the revision of the one on its way
            self.settle()
        last = self.revisions.get(key, 0)  # 0: never written, as far as this coordinator knows
        if len(data) > self.limit:  # NATS would drop the connection over it, again and again
            raise NatsError(f"{key} is {len(data)} bytes: NATS takes at most {self.limit}")
        self.pending[key] = self.stream.publish_later(kv_subject(self.bucket, key), data, last=last)
        if key.startswith(OUTBOX + "/"):
            # A message first, then what remembers it was queued (held.json, rule state): a
            # write refused on the way must not let the later ones land without it.
            self.settle()

    def settle(self) -> None:
        """Wait until the bucket took every write so far; LostLease when one was refused
        because another coordinator wrote the key."""
        if not self.pending:
            return
        self.check()
        keys = list(self.pending)
        results = self.stream.acknowledged([self.pending[key] for key in keys])
        self.pending.clear()
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, JetStreamError):
                if result.err_code == WRONG_LAST_SEQUENCE:
                    raise LostLease(f"{key} was written by another coordinator")
                raise result
            self.revisions[key] = result.seq
            self.present.add(key)

    @property
    def limit(self) -> int:
        return self.stream.connection.max_payload - HEADROOM

    def check(self) -> None:
        if not self.valid():
            raise LostLease("the lease ran out before this write (a stall, a suspend)")

    def removed(self) -> int:
        """Put the files passes moved in place without writing them (a dead letter renamed
        into outbox/dead/), and delete the keys of files passes removed; how many deleted."""
        for path in self._unwritten():
            with open(path, "rb") as handle:
                self.wrote(path, handle.read())
        self.settle()
        gone = [key for key in self.present if not os.path.exists(self.path_of(key))]
        for key in gone:
            try:
                self.revisions[key] = self.stream.delete(self.bucket, key, last=self.revisions[key])
            except JetStreamError as error:
                if error.err_code == WRONG_LAST_SEQUENCE:
                    raise LostLease(f"{key} was written by another coordinator") from None
                raise
            self.present.discard(key)
        return len(gone)

    def _unwritten(self) -> list[str]:
        found = []
        for part in MIRRORED:
            for directory, _, files in os.walk(os.path.join(self.work_dir, part)):
                for name in files:
                    path = os.path.join(directory, name)
                    key = self.key_of(path)
                    if key is not None and key not in self.present and key not in self.pending:
                        found.append(path)
        return found

    def attach(self) -> None:
        fsatomic.mirror_to(self)

    @staticmethod
    def detach() -> None:
        fsatomic.mirror_to(None)

    # -- taking office ---------------------------------------------------------------------

    def load(self) -> int:
        """Replace the working directory's mirrored parts with the bucket; how many files."""
        kept = _read(os.path.join(self.work_dir, STATE, ATTEMPTS))
        for part in (*MIRRORED, TMP):
            shutil.rmtree(os.path.join(self.work_dir, part), ignore_errors=True)
        if kept is not None:
            fsatomic.write_atomic(self.work_dir, os.path.join(self.work_dir, STATE, ATTEMPTS), kept)
        self.revisions.clear()
        self.present.clear()
        self.pending.clear()
        loaded = 0
        for key in self.stream.keys(self.bucket):
            entry = self.stream.get(self.bucket, key)
            if entry is None:
                continue
            self.revisions[key] = entry.revision
            if entry.value is None:
                continue
            path = self.path_of(key)
            fsatomic.ensure_dir(os.path.dirname(path))
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, fsatomic.FILE_MODE)
            try:
                os.write(handle, entry.value)
            finally:
                os.close(handle)
            self.present.add(key)
            loaded += 1
        return loaded


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None
