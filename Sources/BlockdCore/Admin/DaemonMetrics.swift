// The metrics `GET /metrics` shows (docs/METRICS.md): swift-prometheus as the backend of
// swift-metrics, so the engine's counters land in this registry, and per-volume gauges
// (role, epoch, LSNs) and per-replica gauges read from the volumes at each scrape.
//
// Invariants:
// - The scrape gauges are exactly those of the volumes and replicas passed to the last
//   `render`: a deleted volume's or a dropped replica's series disappear.
// - Each metric name is registered with one help text (the registry traps on a mismatch):
//   the texts are the constants of `ScrapeGauge`.

import BlockEngine
import Metrics
import Prometheus
import Synchronization

/// The daemon's metrics registry and its Prometheus text.
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// Volumes opened by the daemon report through this factory (`VolumeOptions.metricsFactory`).
    public let factory: PrometheusMetricsFactory
    private let scrapeGauges = Mutex<[ScrapeGauge.Key: Prometheus.Gauge]>([:])

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// Makes this registry the process's swift-metrics backend, so libraries that use
    /// `MetricsSystem.factory` report here too. Once per process (swift-metrics traps on a
    /// second bootstrap): `blockd serve` calls it at start; tests do not.
    public func bootstrapSwiftMetrics() {
        MetricsSystem.bootstrap(factory)
    }

    /// The Prometheus text exposition, after setting the scrape gauges from `volumes`.
    func render(volumes: [(name: String, volume: Volume, replicas: [ReplicaStatus])]) -> String {
        var samples: [ScrapeGauge.Key: Double] = [:]
        for (name, volume, replicas) in volumes {
            let positions = volume.logPositions
            let role = VolumeStatus.reportedRole(volume.role)
            for candidate in ["primary", "replica", "fenced", "none"] {
                samples[.init(.role, [("volume", name), ("role", candidate)])] = candidate == role ? 1 : 0
            }
            samples[.init(.epoch, [("volume", name)])] = Double(volume.epoch)
            samples[.init(.headLSN, [("volume", name)])] = Double(positions.lastLSN)
            samples[.init(.durableLSN, [("volume", name)])] = Double(positions.durableLSN)
            samples[.init(.checkpointLSN, [("volume", name)])] = Double(positions.checkpointLSN)
            samples[.init(.committedLSN, [("volume", name)])] = Double(positions.committedLSN)
            // The hook for replication's lag: filled once `ReplicationControl` reports replicas.
            for replica in replicas {
                let labels = [("volume", name), ("replica", replica.address)]
                samples[.init(.replicaDurableLSN, labels)] = Double(replica.durableLSN)
                samples[.init(.replicaShippedBytes, labels)] = Double(replica.shippedBytes)
                for candidate in ["inSync", "catchingUp", "rebuilding", "disconnected"] {
                    samples[.init(.replicaState, labels + [("state", candidate)])] = candidate == replica.state ? 1 : 0
                }
                samples[.init(.replicaLag, labels)] = Double(positions.lastLSN &- min(replica.durableLSN, positions.lastLSN))
                if let bytes = volume.logBytes(after: replica.durableLSN) {
                    samples[.init(.replicaLagBytes, labels)] = Double(bytes)
                }
            }
        }
        scrapeGauges.withLock { gauges in
            for (key, gauge) in gauges where samples[key] == nil {
                registry.unregisterGauge(gauge)
                gauges[key] = nil
            }
            for (key, value) in samples {
                let gauge = gauges[key] ?? registry.makeGauge(descriptor: key.gauge.descriptor, labels: key.labels)
                gauges[key] = gauge
                gauge.set(to: value)
            }
        }
        return registry.emitToString()
    }
}

/// The gauges set at each scrape.
enum ScrapeGauge: String, CaseIterable {
    case role = "blockd_volume_role"
    case epoch = "blockd_volume_epoch"
    case headLSN = "blockd_volume_head_lsn"
    case durableLSN = "blockd_volume_durable_lsn"
    case checkpointLSN = "blockd_volume_checkpoint_lsn"
    case committedLSN = "blockd_volume_committed_lsn"
    case replicaDurableLSN = "blockd_replica_durable_lsn"
    case replicaLag = "blockd_replica_lag_records"
    case replicaLagBytes = "blockd_replica_lag_bytes"
    case replicaShippedBytes = "blockd_replica_shipped_bytes"
    case replicaState = "blockd_replica_state"

    var help: String {
        switch self {
        case .role: "1 for the volume's role (standalone reported as primary), 0 for the others"
        case .epoch: "The volume's fencing epoch"
        case .headLSN: "The last LSN handed out"
        case .durableLSN: "Every record up to this LSN is durable locally"
        case .checkpointLSN: "Every record up to this LSN is in the data region"
        case .committedLSN: "The highest LSN a flush or FUA write was acknowledged at since the volume opened"
        case .replicaDurableLSN: "The highest LSN the replica confirmed durable"
        case .replicaLag: "Records the replica lacks: the primary's head LSN minus the replica's durable LSN"
        case .replicaState: "1 for the replica's state as the primary sees it, 0 for the other three"
        case .replicaLagBytes: "Log bytes the replica lacks after its durable LSN (absent when it lacks more than the log: it must rebuild)"
        case .replicaShippedBytes: "Record and rebuild bytes sent to the replica since shipping to it started"
        }
    }

    var descriptor: MetricNameDescriptor {
        // The full name as the metric name and no unit: the names above are final.
        MetricNameDescriptor(metricName: rawValue, unitName: "", helpText: help)
    }

    struct Key: Hashable {
        let gauge: ScrapeGauge
        let labels: [(String, String)]

        init(_ gauge: ScrapeGauge, _ labels: [(String, String)]) {
            self.gauge = gauge
            self.labels = labels
        }

        static func == (a: Key, b: Key) -> Bool {
            a.gauge == b.gauge && a.labels.elementsEqual(b.labels) { $0 == $1 }
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(gauge)
            for (name, value) in labels {
                hasher.combine(name)
                hasher.combine(value)
            }
        }
    }
}
