import FileProvider
import Foundation
import UniformTypeIdentifiers

/// The errors FileProvider understands, from the protocol's error codes.
/// The header comments of NSFileProviderReplicatedExtension say which code
/// makes the system do what: noSuchItem deletes the item locally,
/// serverUnreachable backs off until the next signal, anything unknown is
/// retried.
enum TmountErrors {
    enum Context {
        case read
        case write
        case delete
    }

    static func provider(_ code: NSFileProviderError.Code, _ message: String, _ extra: [String: Any] = [:]) -> NSError {
        var info = extra
        info[NSLocalizedDescriptionKey] = message
        return NSError(domain: NSFileProviderErrorDomain, code: code.rawValue, userInfo: info)
    }

    static func map(_ error: Error, during context: Context) -> Error {
        guard let clientError = error as? ClientError else {
            return error
        }
        switch clientError {
        case .unreachable(let why):
            return provider(.serverUnreachable, why)
        case .protocolMismatch(let server):
            return provider(.cannotSynchronize, "the tmount process speaks FileProvider protocol \(server), this extension \(tmountProtocolVersion); install the tmount.app built with your tmount")
        case .malformed(let why):
            return provider(.cannotSynchronize, why)
        case .server(let wire):
            switch wire.code {
            case "notFound":
                return provider(.noSuchItem, wire.message)
            case "exists":
                var extra: [String: Any] = [:]
                if let existing = wire.item {
                    extra[NSFileProviderErrorItemKey] = TmountItem(existing)
                }
                return provider(.filenameCollision, wire.message, extra)
            case "notEmpty":
                return provider(.directoryNotEmpty, wire.message)
            case "anchorExpired":
                return provider(.syncAnchorExpired, wire.message)
            case "readOnly", "denied":
                if context == .delete {
                    return provider(.deletionRejected, wire.message)
                }
                return CocoaError(context == .read ? .fileReadNoPermission : .fileWriteNoPermission, userInfo: [NSLocalizedDescriptionKey: wire.message])
            case "notSupported":
                return CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: wire.message])
            case "unavailable", "timeout":
                return provider(.serverUnreachable, wire.message)
            case "unsupportedVersion":
                return provider(.cannotSynchronize, wire.message)
            default:
                return CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "\(wire.code): \(wire.message)"])
            }
        }
    }
}

/// Copies what the system hands over into the staging folder the server
/// named in its hello (inside the App Group container, which both sides can
/// reach); the server reads and deletes the copy.
enum Staging {
    static func copy(_ url: URL, into staging: String) throws -> String {
        let destination = URL(fileURLWithPath: staging, isDirectory: true).appendingPathComponent("upload-\(UUID().uuidString)", isDirectory: false)
        try FileManager.default.copyItem(at: url, to: destination)
        return destination.path
    }

    static func milliseconds(_ date: Date) -> Double {
        (date.timeIntervalSince1970 * 1000).rounded()
    }
}

/// The FileProvider extension of tmount.app: a thin client. Every call is
/// forwarded to the tmount process that serves this domain, over the Unix
/// socket `<App Group container>/tmount/<key>.sock` of domain `tmount-<key>`.
@objc(TmountFileProviderExtension)
final class FileProviderExtension: NSObject, NSFileProviderReplicatedExtension {
    private let domain: NSFileProviderDomain
    private let client: TmountClient
    private let queue = DispatchQueue(label: "dev.tmount.fileprovider", qos: .userInitiated, attributes: .concurrent)

    /// Uploads and downloads wait for the whole file; metadata calls do not wait that long.
    private static let transferTimeout: TimeInterval = 6 * 3600

    required init(domain: NSFileProviderDomain) {
        self.domain = domain
        self.client = TmountClient(domainIdentifier: domain.identifier.rawValue)
        super.init()
    }

    func invalidate() {}

    func item(for identifier: NSFileProviderItemIdentifier, request: NSFileProviderRequest, completionHandler: @escaping (NSFileProviderItem?, Error?) -> Void) -> Progress {
        let progress = Progress(totalUnitCount: 1)
        let client = self.client
        queue.async {
            do {
                let result: ItemResult = try client.call("item") { _ in
                    ["identifier": Identifiers.wire(identifier)]
                }
                completionHandler(TmountItem(result.item), nil)
            } catch {
                completionHandler(nil, TmountErrors.map(error, during: .read))
            }
            progress.completedUnitCount = 1
        }
        return progress
    }

    func fetchContents(for itemIdentifier: NSFileProviderItemIdentifier, version requestedVersion: NSFileProviderItemVersion?, request: NSFileProviderRequest, completionHandler: @escaping (URL?, NSFileProviderItem?, Error?) -> Void) -> Progress {
        let progress = Progress(totalUnitCount: 1)
        let client = self.client
        queue.async {
            do {
                let result: FetchResult = try client.call("fetch", timeout: FileProviderExtension.transferTimeout) { _ in
                    ["identifier": Identifiers.wire(itemIdentifier)]
                }
                // The system takes the file over and moves it out of the staging folder.
                completionHandler(URL(fileURLWithPath: result.path, isDirectory: false), TmountItem(result.item), nil)
            } catch {
                completionHandler(nil, nil, TmountErrors.map(error, during: .read))
            }
            progress.completedUnitCount = 1
        }
        return progress
    }

    func createItem(basedOn itemTemplate: NSFileProviderItem, fields: NSFileProviderItemFields, contents url: URL?, options: NSFileProviderCreateItemOptions = [], request: NSFileProviderRequest, completionHandler: @escaping (NSFileProviderItem?, NSFileProviderItemFields, Bool, Error?) -> Void) -> Progress {
        let progress = Progress(totalUnitCount: 1)
        let type: UTType? = itemTemplate.contentType ?? nil
        let kind: String
        if let type = type, type.conforms(to: .symbolicLink) {
            kind = "symlink"
        } else if let type = type, type.conforms(to: .directory) {
            // Folders and packages (bundles) are directories on the remote.
            kind = "folder"
        } else {
            kind = "file"
        }
        let target: String? = itemTemplate.symlinkTargetPath ?? nil
        let modified: Date? = fields.contains(.contentModificationDate) ? (itemTemplate.contentModificationDate ?? nil) : nil
        let parent = Identifiers.wire(itemTemplate.parentItemIdentifier)
        let name = itemTemplate.filename
        let mayExist = options.contains(.mayAlreadyExist)
        let client = self.client
        queue.async {
            do {
                let result: ItemResult = try client.call("create", timeout: FileProviderExtension.transferTimeout) { hello in
                    var message: [String: Any] = ["parent": parent, "filename": name, "kind": kind, "mayExist": mayExist]
                    if kind == "file", let url = url {
                        message["contents"] = try Staging.copy(url, into: hello.staging)
                    }
                    if kind == "symlink" {
                        message["target"] = target ?? ""
                    }
                    if let modified = modified {
                        message["mtime"] = Staging.milliseconds(modified)
                    }
                    return message
                }
                // Tags, favorite ranks and the like have no place on an SFTP server: nothing is left pending.
                completionHandler(TmountItem(result.item), [], false, nil)
            } catch {
                completionHandler(nil, [], false, TmountErrors.map(error, during: .write))
            }
            progress.completedUnitCount = 1
        }
        return progress
    }

    func modifyItem(_ item: NSFileProviderItem, baseVersion version: NSFileProviderItemVersion, changedFields: NSFileProviderItemFields, contents newContents: URL?, options: NSFileProviderModifyItemOptions = [], request: NSFileProviderRequest, completionHandler: @escaping (NSFileProviderItem?, NSFileProviderItemFields, Bool, Error?) -> Void) -> Progress {
        let progress = Progress(totalUnitCount: 1)
        let identifier = Identifiers.wire(item.itemIdentifier)
        let filename: String? = changedFields.contains(.filename) ? item.filename : nil
        let parent: String? = changedFields.contains(.parentItemIdentifier) ? Identifiers.wire(item.parentItemIdentifier) : nil
        let contents: URL? = changedFields.contains(.contents) ? newContents : nil
        let modified: Date? = changedFields.contains(.contentModificationDate) ? (item.contentModificationDate ?? nil) : nil
        let client = self.client
        queue.async {
            do {
                // The last writer wins, as with sshfs: the base version is not compared with the remote.
                let result: ItemResult = try client.call("modify", timeout: FileProviderExtension.transferTimeout) { hello in
                    var message: [String: Any] = ["identifier": identifier]
                    if let filename = filename {
                        message["filename"] = filename
                    }
                    if let parent = parent {
                        message["parent"] = parent
                    }
                    if let contents = contents {
                        message["contents"] = try Staging.copy(contents, into: hello.staging)
                    }
                    if let modified = modified {
                        message["mtime"] = Staging.milliseconds(modified)
                    }
                    return message
                }
                completionHandler(TmountItem(result.item), [], false, nil)
            } catch {
                completionHandler(nil, [], false, TmountErrors.map(error, during: .write))
            }
            progress.completedUnitCount = 1
        }
        return progress
    }

    func deleteItem(identifier: NSFileProviderItemIdentifier, baseVersion version: NSFileProviderItemVersion, options: NSFileProviderDeleteItemOptions = [], request: NSFileProviderRequest, completionHandler: @escaping (Error?) -> Void) -> Progress {
        let progress = Progress(totalUnitCount: 1)
        let recursive = options.contains(.recursive)
        let client = self.client
        queue.async {
            do {
                let _: EmptyResult = try client.call("delete", timeout: FileProviderExtension.transferTimeout) { _ in
                    ["identifier": Identifiers.wire(identifier), "recursive": recursive]
                }
                completionHandler(nil)
            } catch {
                completionHandler(TmountErrors.map(error, during: .delete))
            }
            progress.completedUnitCount = 1
        }
        return progress
    }

    func enumerator(for containerItemIdentifier: NSFileProviderItemIdentifier, request: NSFileProviderRequest) throws -> NSFileProviderEnumerator {
        // No item allows trashing (the remote has no trash). For that case
        // the NSFileProviderEnumerating header asks for NSFeatureUnsupportedError
        // on the trash container rather than an enumerator.
        if containerItemIdentifier == .trashContainer {
            throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "tmount mounts have no trash: deleting removes the file on the server"])
        }
        return TmountEnumerator(container: Identifiers.wire(containerItemIdentifier), client: client, queue: queue)
    }
}
