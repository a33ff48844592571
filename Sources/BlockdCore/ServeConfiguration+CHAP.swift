// The CHAP settings of `blockd serve` as a whole, checked before anything is served: a
// setting the daemon would not apply is an error, never silently ignored, because the target
// it was meant for would then take logins without authentication.

import BlockISCSI

extension ServeConfiguration {
    /// Applies the values of `--chap`, `--mutual-chap` and `--discovery-chap` (see
    /// `CHAPOption.parse`). Two values for one volume are an error.
    public mutating func applyCHAPOptions(chap: [String], mutualChap: [String], discoveryChap: String?) throws(ServeError) {
        for entry in chap {
            let (volume, credentials) = try CHAPOption.parse(entry, option: "--chap")
            guard initiatorCHAP.updateValue(credentials, forKey: volume) == nil else {
                throw .invalidArgument("--chap is given twice for \(Self.describe(volume: volume))")
            }
        }
        for entry in mutualChap {
            let (volume, credentials) = try CHAPOption.parse(entry, option: "--mutual-chap")
            guard targetCHAP.updateValue(credentials, forKey: volume) == nil else {
                throw .invalidArgument("--mutual-chap is given twice for \(Self.describe(volume: volume))")
            }
        }
        if let discoveryChap {
            let (volume, credentials) = try CHAPOption.parse(discoveryChap, option: "--discovery-chap")
            guard volume == "*" else { throw .invalidArgument("--discovery-chap takes USER:SECRET, without a volume") }
            discoveryCHAP = credentials
        }
    }

    /// Checks every CHAP setting against `volumeNames`, the volumes that may be served (in
    /// the data directory or to be created). Throws, naming the volume or option, for a
    /// setting that would not be applied or could never let a login succeed; returns
    /// warnings for settings that work but are weak.
    public func checkCHAP(volumeNames: Set<String>) throws(ServeError) -> [String] {
        var warnings: [String] = []
        for (option, settings) in [("--chap", initiatorCHAP), ("--mutual-chap", targetCHAP)] {
            for (volume, credentials) in settings.sorted(by: { $0.key < $1.key }) {
                guard volume == "*" || volumeNames.contains(volume) else {
                    let known = volumeNames.isEmpty ? "none" : volumeNames.sorted().joined(separator: ", ")
                    throw .invalidArgument("\(option) names volume '\(volume)', which is neither in \(dataDirectory) "
                        + "nor created by --create (volumes: \(known)); not starting, as the volume it was meant "
                        + "for would be served without it")
                }
                warnings += try CHAPOption.check(credentials, option: option)
            }
        }
        if let discoveryCHAP { warnings += try CHAPOption.check(discoveryCHAP, option: "--discovery-chap") }
        // Every named volume is one of `volumeNames` now, so these are all the targets.
        for name in volumeNames.sorted() {
            let authentication = self.authentication(forVolume: name)
            guard let target = authentication.targetCredentials else { continue }
            // Mutual CHAP follows the initiator's own CHAP; the login never uses it alone.
            guard let initiator = authentication.initiatorCredentials else {
                throw .invalidArgument("--mutual-chap applies to volume '\(name)', which has no --chap: mutual CHAP "
                    + "follows the initiator's CHAP and is never used alone")
            }
            // RFC 7143 section 9.2.1: the login refuses a response that shows both are equal.
            guard target.secret != initiator.secret else {
                throw .invalidArgument("--chap and --mutual-chap for volume '\(name)' have the same secret; "
                    + "they must differ (RFC 7143 section 9.2.1)")
            }
        }
        return warnings
    }

    private static func describe(volume: String) -> String {
        volume == "*" ? "every volume" : "volume '\(volume)'"
    }
}
