// BlockReplication ships a primary's write-ahead log to replicas and implements the engine's
// `ReplicaBarrier`, so that `sync_all` and `sync_quorum` flushes wait for replica
// durability. The module is created with the package; its protocol, epochs/fencing,
// catch-up and rebuild arrive with the replication issue. Until then it exports nothing,
// and the engine refuses strict-mode flushes that need replicas (BlockError.barrierFailed /
// .quorumLost), so nothing silently runs local-only.

import BlockEngine
