// Secrets and deterministic nonces for the handshake tests.

@testable import BlockReplication

let groupSecret = try! ReplicationSecret(bytes: Array("the-replication-group-secret".utf8))
let foreignSecret = try! ReplicationSecret(bytes: Array("not-the-replication-secret!!".utf8))

/// A deterministic generator for nonces.
func generator(_ seed: UInt64) -> SeededGenerator {
    SeededGenerator(seed: seed)
}
