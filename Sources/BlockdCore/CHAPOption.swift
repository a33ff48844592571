// The CHAP options of `blockd serve` (`--chap`, `--mutual-chap`, `--discovery-chap`): their
// syntax, secrets read from files, and the limits a login can use.
//
// Invariants:
// - No error message or log line contains a secret.
// - A credential that passes `check` can be used by a login: its name fits a CHAP_N value
//   (the login parser refuses longer ones, so a longer name could never log in) and its
//   secret is 1 to 255 bytes without NUL (initiators keep it as a C string in a 256-byte
//   buffer; open-iscsi does).

import BlockISCSI
import BlockReplication

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One value of a CHAP option.
public enum CHAPOption {
    public static let maximumNameBytes = TextKeyValues.maximumSimpleValueBytes
    public static let maximumSecretBytes = 255
    /// RFC 7143 section 12.1.3 recommends secrets of at least 12 bytes; libiscsi and Linux
    /// accept shorter ones, so a shorter secret is only warned about.
    public static let recommendedSecretBytes = 12
    /// A secret file larger than this is refused without reading it.
    static let maximumSecretFileBytes = 4096

    /// `[VOLUME=]USER:SECRET`, or `[VOLUME=]USER:@FILE` to read the secret from FILE (which
    /// keeps it out of the command line, visible to every user in `ps`). Without `VOLUME=`
    /// the credentials are for every volume (`*`). `option` names the flag in errors.
    public static func parse(_ text: String, option: String) throws(ServeError) -> (volume: String, credentials: CHAPCredentials) {
        var rest = Substring(text)
        var volume = "*"
        if let equals = rest.firstIndex(of: "="), let colon = rest.firstIndex(of: ":"), equals < colon {
            volume = String(rest[..<equals])
            rest = rest[rest.index(after: equals)...]
            guard VolumeNames.isValid(volume) else {
                throw .invalidArgument("\(option): invalid volume name '\(volume)' (letters, digits, '-', '_', '.'; at most 64)")
            }
        }
        guard let colon = rest.firstIndex(of: ":"), colon != rest.startIndex, rest.index(after: colon) != rest.endIndex else {
            throw .invalidArgument("\(option) expects [VOLUME=]USER:SECRET or [VOLUME=]USER:@FILE")
        }
        let value = rest[rest.index(after: colon)...]
        let secret = value.hasPrefix("@") ? try readSecretFile(String(value.dropFirst()), option: option) : String(value)
        return (volume, CHAPCredentials(username: String(rest[..<colon]), secret: secret))
    }

    /// The secret in the file at `path`: its bytes without one final newline. The file must
    /// be a regular file that others can neither read nor write (mode 600 or 640; with
    /// `ownerOnly`, nor its group: 600), and not empty; anything else is an error naming the
    /// file.
    public static func readSecretFile(_ path: String, option: String, ownerOnly: Bool = false,
                                      kind: String = "secret file") throws(ServeError) -> String {
        func refuse(_ reason: String) -> ServeError { .invalidArgument("\(option): \(kind) \(path) \(reason)") }
        let secret: [UInt8]
        do throws(PrivateFile.Refusal) {
            secret = try PrivateFile.contents(of: path, maxBytes: maximumSecretFileBytes, ownerOnly: ownerOnly)
        } catch {
            throw refuse(error.reason)
        }
        guard let text = String(validating: secret, as: UTF8.self) else { throw refuse("is not UTF-8 text") }
        return text
    }

    /// Throws when a login could never use `credentials`; returns warnings (a secret shorter
    /// than recommended).
    public static func check(_ credentials: CHAPCredentials, option: String) throws(ServeError) -> [String] {
        let name = credentials.username
        guard !name.isEmpty, name.utf8.count <= maximumNameBytes, !name.utf8.contains(0) else {
            throw .invalidArgument("\(option): the CHAP name must be 1 to \(maximumNameBytes) bytes without NUL")
        }
        let secretBytes = credentials.secret.utf8.count
        guard (1...maximumSecretBytes).contains(secretBytes), !credentials.secret.utf8.contains(0) else {
            throw .invalidArgument("\(option) for CHAP name '\(name)': the secret must be 1 to \(maximumSecretBytes) bytes without NUL")
        }
        guard secretBytes >= recommendedSecretBytes else {
            return ["\(option) for CHAP name '\(name)': the secret has \(secretBytes) bytes; RFC 7143 recommends at least \(recommendedSecretBytes)"]
        }
        return []
    }
}
