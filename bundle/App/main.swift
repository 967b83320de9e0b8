import FileProvider
import Foundation

// tmount.app's executable. Only the app that contains a FileProvider
// extension may add or remove its domains, so the tmount CLI runs this
// executable directly (src/backends/fileprovider/host-app.ts):
//
//   tmount info                                   the App Group and its container folder
//   tmount list-domains                           the domains the system has for this app
//   tmount add-domain <tmount-key> <display name> register a domain (Finder shows it under Locations)
//   tmount remove-domain <tmount-key>             remove it, if it exists
//   tmount signal <tmount-key>                    tell the system the domain's working set changed
//
// Each command prints one JSON line ({"ok":true,…} or {"ok":false,"error":…})
// and exits 0 or 1. Launched without a command (from Finder or `open`), it
// exits at once: that launch is what makes LaunchServices register the
// extension.

func finish(_ fields: [String: Any], ok: Bool = true) -> Never {
    var answer = fields
    answer["ok"] = ok
    if let data = try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys]), let line = String(data: data, encoding: .utf8) {
        print(line)
    } else {
        print("{\"ok\":false,\"error\":\"the answer could not be encoded as JSON\"}")
    }
    fflush(stdout)
    exit(ok ? 0 : 1)
}

func fail(_ message: String) -> Never {
    finish(["error": message], ok: false)
}

func describe(_ error: Error) -> String {
    let ns = error as NSError
    return "\(ns.localizedDescription) (\(ns.domain) \(ns.code))"
}

/// FileProvider forbids '/' and ':' in domain identifiers; tmount's all start with "tmount-".
func checkedIdentifier(_ arguments: [String], count: Int, usage: String) -> String {
    guard arguments.count == count else {
        fail("usage: \(usage)")
    }
    let identifier = arguments[1]
    guard identifier.hasPrefix(TmountShared.domainPrefix), !identifier.contains("/"), !identifier.contains(":") else {
        fail("\(identifier) is not a tmount domain identifier (tmount-<key>)")
    }
    return identifier
}

/// The system's domain with this identifier, or nil when it has none.
func findDomain(_ identifier: String, _ body: @escaping (NSFileProviderDomain?) -> Void) {
    NSFileProviderManager.getDomainsWithCompletionHandler { domains, error in
        if let error = error {
            fail("listing the FileProvider domains failed: \(describe(error))")
        }
        body(domains.first { $0.identifier.rawValue == identifier })
    }
}

// LaunchServices may add a process serial number argument on older systems.
let arguments: [String] = CommandLine.arguments.dropFirst().filter { !$0.hasPrefix("-psn_") }
guard let command = arguments.first else {
    exit(0)
}

DispatchQueue.main.asyncAfter(deadline: .now() + 60) {
    fail("\(command): the system did not answer within 60 s")
}

switch command {
case "info":
    guard let group = TmountShared.appGroup else {
        fail("Info.plist names no TMountAppGroup; rebuild the app with scripts/build-macos-bundle.sh")
    }
    guard let container = TmountShared.containerURL() else {
        fail("the App Group \(group) has no container; is the app signed with the com.apple.security.application-groups entitlement?")
    }
    let version = Bundle.main.object(forInfoDictionaryKey: "CFBundleShortVersionString") as? String ?? "unknown"
    finish(["group": group, "container": container.path, "version": version])

case "list-domains":
    NSFileProviderManager.getDomainsWithCompletionHandler { domains, error in
        if let error = error {
            fail("listing the FileProvider domains failed: \(describe(error))")
        }
        finish(["domains": domains.map { ["identifier": $0.identifier.rawValue, "displayName": $0.displayName] }])
    }

case "add-domain":
    let identifier = checkedIdentifier(arguments, count: 3, usage: "tmount add-domain tmount-<key> <display name>")
    let displayName = arguments[2]
    let domain = NSFileProviderDomain(identifier: NSFileProviderDomainIdentifier(rawValue: identifier), displayName: displayName)
    // Adding a domain that exists updates its display name and succeeds.
    NSFileProviderManager.add(domain) { error in
        if let error = error {
            fail("adding the FileProvider domain \(identifier) failed: \(describe(error))")
        }
        finish(["identifier": identifier])
    }

case "remove-domain":
    let identifier = checkedIdentifier(arguments, count: 2, usage: "tmount remove-domain tmount-<key>")
    findDomain(identifier) { found in
        // A domain the system does not have is never asked to be removed.
        guard let domain = found else {
            finish(["identifier": identifier, "removed": false])
        }
        NSFileProviderManager.remove(domain) { error in
            if let error = error {
                fail("removing the FileProvider domain \(identifier) failed: \(describe(error))")
            }
            finish(["identifier": identifier, "removed": true])
        }
    }

case "signal":
    let identifier = checkedIdentifier(arguments, count: 2, usage: "tmount signal tmount-<key>")
    findDomain(identifier) { found in
        guard let domain = found else {
            fail("the system has no FileProvider domain \(identifier)")
        }
        guard let manager = NSFileProviderManager(for: domain) else {
            fail("the system gave no manager for the domain \(identifier)")
        }
        manager.signalEnumerator(for: .workingSet) { error in
            if let error = error {
                fail("signalling the working set of \(identifier) failed: \(describe(error))")
            }
            finish(["identifier": identifier])
        }
    }

default:
    fail("unknown command \(command); the commands are info, list-domains, add-domain, remove-domain, signal")
}

dispatchMain()
