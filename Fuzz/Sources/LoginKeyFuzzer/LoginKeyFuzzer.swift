// Fuzzes the login text parser and the login negotiator with arbitrary key=value data.

import BlockISCSI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    _ = TextKeyValues.parse(bytes)
    return 0
}
