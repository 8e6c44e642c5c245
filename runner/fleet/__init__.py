"""Several machines, one voice: findings and coordinator state over NATS JetStream.

Only a config with `fleet:` reaches this package. Layers, lowest first: client (the NATS wire
protocol over one socket, stdlib only), jetstream (streams, consumers and key-value buckets
through the JetStream API), names (every subject, stream and bucket, defined once), and the
parts the units run: forward (a host's inbox to the stream), leader (one active coordinator,
standbys waiting on its lease), mirror (the coordinator's state directory kept in KV).
"""
