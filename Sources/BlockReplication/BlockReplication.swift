// BlockReplication ships a primary's write-ahead log to replicas and will implement the
// engine's `ReplicaBarrier`, so that `sync_all` and `sync_quorum` flushes wait for replica
// durability. So far it holds the wire layer (docs/REPLICATION.md):
//
// - Frames/: the frame header, every payload (`FramePayload`, `ReplicationMessage`), and
//   the pure `FrameReader`/`FrameWriter` (bounds, CRC32C, MAC, sequence, phase).
// - Handshake/: the shared secret, the handshake's cryptography and the pure state machines
//   `DialerHandshake` and `ListenerHandshake`.
// - Channel/: thin NIO handlers (`ReplicationFrameDecoder`, `ReplicationFrameEncoder`,
//   `ReplicationHandshakeHandler`) that the shipper and the replica's listener build on.
// - Fuzzing/: entry points for the libFuzzer harnesses in Fuzz/.
//
// Until the shipper exists the engine refuses strict-mode flushes that need replicas
// (BlockError.barrierFailed / .quorumLost), so nothing silently runs local-only.
