import Darwin
import Foundation

/// The FileProvider protocol version this extension speaks. The messages are
/// documented with the server, in src/backends/fileprovider/protocol.ts, and
/// in the README: JSON lines over the domain's Unix socket; the server sends
/// a hello first, then one response per request, matched by id.
let tmountProtocolVersion = 1

struct WireItem: Decodable {
    let id: String
    let parent: String
    let name: String
    let kind: String
    let size: Int64
    /// Milliseconds since 1970.
    let mtime: Double
    let mode: Int
    let target: String?
    let contentVersion: String
    let metadataVersion: String
    let writable: Bool
}

struct WireError: Decodable {
    let code: String
    let message: String
    let `protocol`: Int?
    let item: WireItem?
}

struct Hello: Decodable {
    let type: String
    let `protocol`: Int
    let version: String
    let domain: String
    let readonly: Bool
    /// Where uploads are staged for the server, and where it puts downloads.
    let staging: String
}

private struct Envelope<Answer: Decodable>: Decodable {
    let id: Int?
    let ok: Bool
    let result: Answer?
    let error: WireError?
}

struct ItemResult: Decodable {
    let item: WireItem
}

struct PageResult: Decodable {
    let items: [WireItem]
    let nextPage: String?
}

struct AnchorResult: Decodable {
    let anchor: String
}

struct ChangesResult: Decodable {
    let updated: [WireItem]
    let deleted: [String]
    let anchor: String
    let more: Bool
}

struct FetchResult: Decodable {
    let item: WireItem
    let path: String
}

struct EmptyResult: Decodable {}

enum ClientError: Error {
    /// No tmount process serves this domain (not mounted, or it went away).
    case unreachable(String)
    case protocolMismatch(server: Int)
    case malformed(String)
    case server(WireError)
}

/// The extension's side of the protocol. Each request gets its own
/// connection: the extension may be suspended or killed at any time, and a
/// connection per request never outlives the request that needed it.
final class TmountClient {
    private let domainIdentifier: String

    init(domainIdentifier: String) {
        self.domainIdentifier = domainIdentifier
    }

    /// Sends one request and waits for its answer. Blocks: runs on a
    /// background queue only. `fields` sees the server's hello first, so an
    /// upload can be staged in the folder the server named.
    func call<Answer: Decodable>(_ op: String, timeout: TimeInterval = 120, _ fields: (Hello) throws -> [String: Any]) throws -> Answer {
        guard let path = TmountShared.socketPath(forDomain: domainIdentifier) else {
            throw ClientError.unreachable("the App Group container of \(TmountShared.appGroup ?? "(no TMountAppGroup in Info.plist)") is not available to the extension")
        }
        let connection = try Connection(path: path, timeout: timeout)
        defer { connection.close() }
        let hello = try JSONDecoder().decode(Hello.self, from: try connection.readLine())
        guard hello.`protocol` == tmountProtocolVersion else {
            throw ClientError.protocolMismatch(server: hello.`protocol`)
        }
        var message = try fields(hello)
        message["v"] = tmountProtocolVersion
        message["id"] = 1
        message["op"] = op
        var line = try JSONSerialization.data(withJSONObject: message, options: [])
        line.append(0x0A)
        try connection.write(line)
        let envelope = try JSONDecoder().decode(Envelope<Answer>.self, from: try connection.readLine())
        if envelope.ok, let result = envelope.result {
            return result
        }
        if let error = envelope.error {
            throw ClientError.server(error)
        }
        throw ClientError.malformed("the answer to \(op) has neither a result nor an error")
    }
}

/// One blocking Unix-socket connection that reads newline-terminated lines.
private final class Connection {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(path: String, timeout: TimeInterval) throws {
        let bytes = Array(path.utf8)
        guard bytes.count <= TmountShared.maxSocketPath else {
            throw ClientError.unreachable("the socket path \(path) is longer than \(TmountShared.maxSocketPath) bytes")
        }
        let fd = Darwin.socket(AF_UNIX, SOCK_STREAM, 0)
        guard fd >= 0 else {
            throw ClientError.unreachable("socket(2) failed: \(Connection.lastError())")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        address.sun_len = UInt8(MemoryLayout<sockaddr_un>.size)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            // The rest of sun_path stays zero: that is the terminating NUL.
            raw.copyBytes(from: bytes)
        }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        // A server that went away must fail the write, not kill the extension with SIGPIPE.
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                Darwin.connect(fd, generic, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let reason = Connection.lastError()
            _ = Darwin.close(fd)
            throw ClientError.unreachable("no tmount process serves this domain (connect to \(path): \(reason)); mount it again with tmount mount --backend fileprovider")
        }
        self.fd = fd
    }

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }

    func readLine(limit: Int = 64 * 1024 * 1024) throws -> Data {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[0..<newline])
                buffer.removeSubrange(0...newline)
                return line
            }
            guard buffer.count < limit else {
                throw ClientError.malformed("a line from tmount longer than \(limit) bytes")
            }
            let count = chunk.withUnsafeMutableBytes { raw in
                Darwin.read(fd, raw.baseAddress, raw.count)
            }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
            } else if count == 0 {
                throw ClientError.unreachable("tmount closed the connection before answering")
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                throw ClientError.unreachable("tmount did not answer in time")
            } else {
                throw ClientError.unreachable("read(2) failed: \(Connection.lastError())")
            }
        }
    }

    func write(_ data: Data) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let written = Darwin.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    throw ClientError.unreachable("write(2) to tmount failed: \(Connection.lastError())")
                }
            }
        }
    }

    func close() {
        _ = Darwin.close(fd)
    }
}
