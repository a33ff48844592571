// libFuzzer entry points (see FuzzDriver).

import FuzzDriver

@_cdecl("ReplicationHandshakeFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data, size) }
}

/// The symbol libFuzzer's own main() looks for.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    fuzz(data, size)
}
