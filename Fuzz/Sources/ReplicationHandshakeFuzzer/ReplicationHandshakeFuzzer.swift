// Fuzzes the replication handshake: a genuine dialer and listener talk through an attacker
// the input drives (forward, drop, tamper, replay, forge, raw bytes). The checks live in
// BlockReplication (ReplicationFuzzing.handshake) so unit tests run them too.

import BlockReplication

/// One fuzzing input; libFuzzer calls it through the driver (Entry.swift).
func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    ReplicationFuzzing.handshake(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
