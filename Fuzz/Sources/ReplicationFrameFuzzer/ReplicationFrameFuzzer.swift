// Fuzzes the replication frame reader with arbitrary byte streams, before and after the
// handshake, with and without a session key, whole and split into reads. The checks live in
// BlockReplication (ReplicationFuzzing.frames) so unit tests run them too.

import BlockReplication

/// One fuzzing input; libFuzzer calls it through the driver (Entry.swift).
func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    ReplicationFuzzing.frames(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
