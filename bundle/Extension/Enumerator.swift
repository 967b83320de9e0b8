import FileProvider
import Foundation

/// Enumerates one container (a folder, a single document, or the working
/// set) by asking the tmount process; sync anchors are positions in its
/// change journal, so enumerateChanges reports exactly what happened since.
final class TmountEnumerator: NSObject, NSFileProviderEnumerator {
    /// Page data of ours starts with this; anything else is one of the system's initial pages.
    private static let pagePrefix = "tmount-page:"

    private let container: String
    private let client: TmountClient
    private let queue: DispatchQueue

    init(container: String, client: TmountClient, queue: DispatchQueue) {
        self.container = container
        self.client = client
        self.queue = queue
        super.init()
    }

    func invalidate() {}

    private static func cursor(from page: NSFileProviderPage) -> String? {
        guard let text = String(data: page.rawValue, encoding: .utf8), text.hasPrefix(pagePrefix) else {
            return nil
        }
        return String(text.dropFirst(pagePrefix.count))
    }

    func enumerateItems(for observer: NSFileProviderEnumerationObserver, startingAt page: NSFileProviderPage) {
        let cursor = TmountEnumerator.cursor(from: page)
        let limit = min(1000, max(1, observer.suggestedPageSize ?? 200))
        let container = self.container
        let client = self.client
        queue.async {
            do {
                let result: PageResult = try client.call("enumerate") { _ in
                    ["container": container, "page": cursor.map { $0 as Any } ?? NSNull(), "limit": limit]
                }
                let items: [NSFileProviderItem] = result.items.map { TmountItem($0) }
                observer.didEnumerate(items)
                let next = result.nextPage.map { NSFileProviderPage(rawValue: Data((TmountEnumerator.pagePrefix + $0).utf8)) }
                observer.finishEnumerating(upTo: next)
            } catch {
                observer.finishEnumeratingWithError(TmountErrors.map(error, during: .read))
            }
        }
    }

    func enumerateChanges(for observer: NSFileProviderChangeObserver, from syncAnchor: NSFileProviderSyncAnchor) {
        // Anything that is not text is no anchor of ours: the server answers anchorExpired.
        let anchor = String(data: syncAnchor.rawValue, encoding: .utf8) ?? ""
        let limit = min(5000, max(1, observer.suggestedBatchSize ?? 500))
        let container = self.container
        let client = self.client
        queue.async {
            do {
                let result: ChangesResult = try client.call("changes") { _ in
                    ["container": container, "anchor": anchor, "limit": limit]
                }
                if !result.updated.isEmpty {
                    let items: [NSFileProviderItem] = result.updated.map { TmountItem($0) }
                    observer.didUpdate(items)
                }
                if !result.deleted.isEmpty {
                    observer.didDeleteItems(withIdentifiers: result.deleted.map { Identifiers.system($0) })
                }
                observer.finishEnumeratingChanges(upTo: NSFileProviderSyncAnchor(rawValue: Data(result.anchor.utf8)), moreComing: result.more)
            } catch {
                observer.finishEnumeratingWithError(TmountErrors.map(error, during: .read))
            }
        }
    }

    func currentSyncAnchor(completionHandler: @escaping (NSFileProviderSyncAnchor?) -> Void) {
        let client = self.client
        queue.async {
            do {
                let result: AnchorResult = try client.call("anchor") { _ in [:] }
                completionHandler(NSFileProviderSyncAnchor(rawValue: Data(result.anchor.utf8)))
            } catch {
                completionHandler(nil)
            }
        }
    }
}
