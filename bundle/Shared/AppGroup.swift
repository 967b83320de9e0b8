import Foundation

/// What the app and its extension agree on without talking to each other:
/// the App Group they share and where a domain's socket lives in it.
enum TmountShared {
    static let domainPrefix = "tmount-"

    /// sun_path holds 104 bytes on macOS, the terminating NUL included.
    static let maxSocketPath = 103

    /// The App Group, written into both Info.plists by scripts/build-macos-bundle.sh.
    static var appGroup: String? {
        Bundle.main.object(forInfoDictionaryKey: "TMountAppGroup") as? String
    }

    static func containerURL() -> URL? {
        guard let group = appGroup else { return nil }
        return FileManager.default.containerURL(forSecurityApplicationGroupIdentifier: group)
    }

    /// `<container>/tmount/<key>.sock` for the domain `tmount-<key>`; the
    /// tmount process serving that domain listens there
    /// (src/backends/fileprovider/index.ts builds the same path).
    static func socketPath(forDomain identifier: String) -> String? {
        guard identifier.hasPrefix(domainPrefix), let container = containerURL() else { return nil }
        let key = String(identifier.dropFirst(domainPrefix.count))
        return container
            .appendingPathComponent("tmount", isDirectory: true)
            .appendingPathComponent("\(key).sock", isDirectory: false)
            .path
    }
}
