// Fuzzes the login text parser and the login negotiator with arbitrary bytes (the entry
// points check their own invariants with preconditions).

import BlockISCSI

/// One fuzzing input; libFuzzer calls it through the driver (Entry.swift).
func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    LoginFuzzing.parseText(bytes)
    LoginFuzzing.login(bytes)
    return 0
}
