// The targets a server serves, looked up by name during login; targets can be added and
// removed while the server runs (new volumes, deleted volumes).

import BlockSCSI
import Synchronization

final class TargetCatalog: LoginTargetCatalog, Sendable {
    private let targets: Mutex<[String: ISCSITargetDefinition]>
    let portalGroupTag: UInt16
    let discoveryAuthentication: LoginAuthentication

    init(targets: [ISCSITargetDefinition], portalGroupTag: UInt16, discoveryAuthentication: LoginAuthentication) {
        self.targets = Mutex(Dictionary(targets.map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { first, _ in first }))
        self.portalGroupTag = portalGroupTag
        self.discoveryAuthentication = discoveryAuthentication
    }

    func target(named name: String) -> LoginTarget? {
        definition(named: name).map {
            LoginTarget(name: $0.name, alias: $0.alias, portalGroupTag: portalGroupTag, authentication: $0.authentication)
        }
    }

    /// iSCSI names compare case-insensitively (RFC 3722 normalizes them to lower case).
    func definition(named name: String) -> ISCSITargetDefinition? {
        targets.withLock { $0[name.lowercased()] }
    }

    var allDefinitions: [ISCSITargetDefinition] {
        targets.withLock { Array($0.values) }.sorted { $0.name < $1.name }
    }

    func add(_ target: ISCSITargetDefinition) {
        targets.withLock { $0[target.name.lowercased()] = target }
    }

    /// True while `target` itself is served: its name, with the same logical units (a
    /// target removed and added again under its name is another target).
    func contains(_ target: ISCSITargetDefinition) -> Bool {
        guard let current = definition(named: target.name), current.logicalUnits.count == target.logicalUnits.count else {
            return false
        }
        return target.logicalUnits.allSatisfy { lun, unit in current.logicalUnits[lun] === unit }
    }

    func remove(named name: String) -> ISCSITargetDefinition? {
        targets.withLock { $0.removeValue(forKey: name.lowercased()) }
    }
}
