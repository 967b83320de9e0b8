import FileProvider
import Foundation
import UniformTypeIdentifiers

/// The protocol names the system's special containers with words of its
/// own; every other identifier is the server's, passed through unchanged.
enum Identifiers {
    static func wire(_ identifier: NSFileProviderItemIdentifier) -> String {
        switch identifier {
        case .rootContainer:
            return "root"
        case .workingSet:
            return "workingSet"
        case .trashContainer:
            return "trash"
        default:
            return identifier.rawValue
        }
    }

    static func system(_ wire: String) -> NSFileProviderItemIdentifier {
        switch wire {
        case "root":
            return .rootContainer
        case "workingSet":
            return .workingSet
        case "trash":
            return .trashContainer
        default:
            return NSFileProviderItemIdentifier(rawValue: wire)
        }
    }
}

/// One file, folder or symlink as the server described it.
final class TmountItem: NSObject, NSFileProviderItem {
    private let wire: WireItem

    init(_ wire: WireItem) {
        self.wire = wire
        super.init()
    }

    var itemIdentifier: NSFileProviderItemIdentifier {
        Identifiers.system(wire.id)
    }

    var parentItemIdentifier: NSFileProviderItemIdentifier {
        wire.id == "root" ? .rootContainer : Identifiers.system(wire.parent)
    }

    var filename: String {
        wire.name
    }

    var contentType: UTType {
        switch wire.kind {
        case "folder":
            return .folder
        case "symlink":
            return .symbolicLink
        default:
            let pathExtension = (wire.name as NSString).pathExtension
            if pathExtension.isEmpty {
                return .data
            }
            return UTType(filenameExtension: pathExtension) ?? .data
        }
    }

    var capabilities: NSFileProviderItemCapabilities {
        let isRoot = wire.id == "root"
        var allowed: NSFileProviderItemCapabilities = [.allowsReading]
        if wire.kind != "symlink" {
            // A downloaded file (or folder) may be evicted: tmount can always fetch it again.
            allowed.insert(.allowsEvicting)
        }
        guard wire.writable else {
            return allowed
        }
        // No .allowsTrashing: the remote has no trash, so Finder deletes for good (and says so).
        if wire.kind == "folder" {
            allowed.insert(.allowsAddingSubItems)
        } else if wire.kind == "file" {
            allowed.insert(.allowsWriting)
        }
        if !isRoot {
            allowed.formUnion([.allowsRenaming, .allowsReparenting, .allowsDeleting])
        }
        return allowed
    }

    var fileSystemFlags: NSFileProviderFileSystemFlags {
        var flags: NSFileProviderFileSystemFlags = []
        if wire.mode & 0o400 != 0 {
            flags.insert(.userReadable)
        }
        if wire.mode & 0o200 != 0 && wire.writable {
            flags.insert(.userWritable)
        }
        if wire.mode & 0o100 != 0 {
            flags.insert(.userExecutable)
        }
        return flags
    }

    var documentSize: NSNumber? {
        wire.kind == "folder" ? nil : NSNumber(value: wire.size)
    }

    var contentModificationDate: Date? {
        Date(timeIntervalSince1970: wire.mtime / 1000)
    }

    var itemVersion: NSFileProviderItemVersion {
        NSFileProviderItemVersion(contentVersion: Data(wire.contentVersion.utf8), metadataVersion: Data(wire.metadataVersion.utf8))
    }

    var symlinkTargetPath: String? {
        wire.kind == "symlink" ? (wire.target ?? "") : nil
    }
}
