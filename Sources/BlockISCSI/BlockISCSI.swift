// BlockISCSI: an iSCSI target (RFC 7143) on SwiftNIO that serves BlockSCSI logical units.
import BlockSCSI
