// How a command's data moves: Data-In PDUs for reads (split by the initiator's
// MaxRecvDataSegmentLength, one sequence per MaxBurstLength, status in the last PDU when it
// can go there) and the solicited ranges of a write (R2Ts of at most MaxBurstLength).

/// One Data-In PDU of a read.
struct DataInSegment: Equatable, Sendable {
    var offset: Int
    var lengthBytes: Int
    var dataSN: UInt32
    /// Last PDU of a sequence (F bit).
    var final: Bool
    /// Last PDU of the command.
    var last: Bool
}

enum DataTransferPlan {
    /// Splits `totalBytes` of read data into Data-In PDUs.
    static func dataInSegments(totalBytes: Int, maxSegmentBytes: Int, maxBurstBytes: Int) -> [DataInSegment] {
        precondition(maxSegmentBytes > 0 && maxBurstBytes > 0, "limits must be positive")
        var segments: [DataInSegment] = []
        segments.reserveCapacity(totalBytes / maxSegmentBytes + 1)
        var offset = 0
        var burstUsed = 0
        while offset < totalBytes {
            let length = min(maxSegmentBytes, totalBytes - offset, maxBurstBytes - burstUsed)
            offset += length
            burstUsed += length
            let last = offset == totalBytes
            let sequenceEnds = last || burstUsed == maxBurstBytes
            if sequenceEnds { burstUsed = 0 }
            segments.append(DataInSegment(offset: offset - length, lengthBytes: length,
                                          dataSN: UInt32(segments.count), final: sequenceEnds, last: last))
        }
        return segments
    }

    /// The next solicited range of a write: at most `maxBurstBytes` from `nextOffset`.
    static func nextSolicitedRange(nextOffset: Int, totalBytes: Int, maxBurstBytes: Int) -> Range<Int>? {
        guard nextOffset < totalBytes else { return nil }
        return nextOffset..<min(totalBytes, nextOffset + maxBurstBytes)
    }
}
