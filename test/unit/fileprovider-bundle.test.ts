import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, type PlistValue } from 'plist';
import { describe, expect, it } from 'vitest';
import { APPEX_NAME, HOST_EXECUTABLE } from '../../src/backends/fileprovider/host-app.js';
import { FP_PROTOCOL_VERSION } from '../../src/backends/fileprovider/protocol.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUNDLE = join(ROOT, 'bundle');
const SCRIPT = readFileSync(join(ROOT, 'scripts', 'build-macos-bundle.sh'), 'utf8');

type Dict = Record<string, PlistValue>;

function plist(...path: string[]): Dict {
  const value = parse(readFileSync(join(BUNDLE, ...path), 'utf8'));
  expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
  return value as Dict;
}

const swift = (...path: string[]) => readFileSync(join(BUNDLE, ...path), 'utf8');

const app = plist('App', 'Info.plist');
const appex = plist('Extension', 'Info.plist');
const appEntitlements = plist('App', 'tmount.entitlements');
const appexEntitlements = plist('Extension', 'TmountFileProvider.entitlements');
const extension = appex.NSExtension as Dict;
const GROUP = '$(TMOUNT_APP_GROUP)';

/** Every key LaunchServices and pluginkit read from a bundle's Info.plist. */
const BUNDLE_KEYS = [
  'CFBundleDevelopmentRegion',
  'CFBundleExecutable',
  'CFBundleIdentifier',
  'CFBundleInfoDictionaryVersion',
  'CFBundleName',
  'CFBundlePackageType',
  'CFBundleShortVersionString',
  'CFBundleSupportedPlatforms',
  'CFBundleVersion',
  'LSMinimumSystemVersion',
];

describe('tmount.app Info.plist', () => {
  it('has every bundle key, as a background-only app for macOS 12+', () => {
    for (const key of BUNDLE_KEYS) expect(app, key).toHaveProperty([key]);
    expect(app.CFBundlePackageType).toBe('APPL');
    expect(app.CFBundleInfoDictionaryVersion).toBe('6.0');
    expect(app.CFBundleSupportedPlatforms).toEqual(['MacOSX']);
    expect(app.LSMinimumSystemVersion).toBe('12.0');
    expect(app.LSBackgroundOnly).toBe(true);
    expect(app.TMountAppGroup).toBe(GROUP);
  });

  it('names the executable tmount runs to manage domains', () => {
    expect(app.CFBundleExecutable).toBe(HOST_EXECUTABLE);
    expect(SCRIPT).toContain('-output "$app/Contents/MacOS/tmount"');
  });
});

describe('the FileProvider extension Info.plist', () => {
  it('has every bundle key, as an XPC bundle whose identifier extends the app\'s', () => {
    for (const key of BUNDLE_KEYS) expect(appex, key).toHaveProperty([key]);
    expect(appex.CFBundlePackageType).toBe('XPC!');
    expect(appex.CFBundleIdentifier).toBe(`${app.CFBundleIdentifier as string}.FileProvider`);
    expect(appex.LSMinimumSystemVersion).toBe('12.0');
    expect(appex.CFBundleShortVersionString).toBe(app.CFBundleShortVersionString);
    expect(appex.CFBundleVersion).toBe(app.CFBundleVersion);
  });

  it('declares the replicated FileProvider extension point, principal class and document group', () => {
    expect(extension.NSExtensionPointIdentifier).toBe('com.apple.fileprovider-nonui');
    expect(extension.NSExtensionFileProviderSupportsEnumeration).toBe(true);
    expect(extension.NSExtensionFileProviderDocumentGroup).toBe(GROUP);
    expect(appex.TMountAppGroup).toBe(GROUP);
    const principal = extension.NSExtensionPrincipalClass as string;
    const source = swift('Extension', 'FileProviderExtension.swift');
    expect(source).toContain(`@objc(${principal})`);
    expect(source).toMatch(new RegExp(`@objc\\(${principal}\\)\\s+final class \\w+: NSObject, NSFileProviderReplicatedExtension`));
  });

  it('names the executable the build script links with the extension entry point', () => {
    expect(appex.CFBundleExecutable).toBe('TmountFileProvider');
    expect(SCRIPT).toContain('-output "$appex/Contents/MacOS/TmountFileProvider"');
    expect(SCRIPT).toContain('-Xlinker -e -Xlinker _NSExtensionMain');
    expect(SCRIPT).toContain(`appex="$app/Contents/PlugIns/${APPEX_NAME}"`);
  });
});

describe('entitlements', () => {
  it('sandbox the extension, give it the network client right and the App Group', () => {
    expect(appexEntitlements['com.apple.security.app-sandbox']).toBe(true);
    expect(appexEntitlements['com.apple.security.network.client']).toBe(true);
    expect(appexEntitlements['com.apple.security.application-groups']).toEqual([GROUP]);
  });

  it('give the app the same App Group as its extension\'s document group', () => {
    expect(appEntitlements['com.apple.security.application-groups']).toEqual([GROUP]);
    expect(appEntitlements['com.apple.security.application-groups']).toEqual([extension.NSExtensionFileProviderDocumentGroup]);
  });
});

describe('the bundle sources agree with the rest of tmount', () => {
  it('every $(…) value in the plists is one the build script fills in', () => {
    const files = ['App/Info.plist', 'Extension/Info.plist', 'App/tmount.entitlements', 'Extension/TmountFileProvider.entitlements'];
    const used = new Set(files.flatMap((file) => [...readFileSync(join(BUNDLE, file), 'utf8').matchAll(/\$\((TMOUNT_[A-Z_]+)\)/g)].map((match) => match[1]!)));
    expect([...used].sort()).toEqual(['TMOUNT_APP_GROUP', 'TMOUNT_BUILD', 'TMOUNT_BUNDLE_ID', 'TMOUNT_VERSION']);
    for (const name of used) expect(SCRIPT).toContain(`s/[$](${name})/`);
  });

  it('the extension speaks the protocol version of the server', () => {
    expect(/^let tmountProtocolVersion = (\d+)\r?$/m.exec(swift('Extension', 'Protocol.swift'))?.[1]).toBe(String(FP_PROTOCOL_VERSION));
  });

  it('the app and the extension find the socket where the server listens', () => {
    // src/backends/fileprovider/index.ts: join(container, 'tmount', `${key}.sock`) for domain `tmount-${key}`.
    const shared = swift('Shared', 'AppGroup.swift');
    expect(shared).toContain('static let domainPrefix = "tmount-"');
    expect(shared).toContain('.appendingPathComponent("tmount", isDirectory: true)');
    expect(shared).toContain('.appendingPathComponent("\\(key).sock", isDirectory: false)');
    expect(shared).toContain('forInfoDictionaryKey: "TMountAppGroup"');
  });

  it('the app answers every command tmount sends it', () => {
    const main = swift('App', 'main.swift');
    const hostApp = readFileSync(join(ROOT, 'src', 'backends', 'fileprovider', 'host-app.ts'), 'utf8');
    const sent = [...hostApp.matchAll(/this\.run\(\['([a-z-]+)'/g)].map((match) => match[1]!);
    expect(sent.sort()).toEqual(['add-domain', 'info', 'list-domains', 'remove-domain', 'signal']);
    for (const command of sent) expect(main).toContain(`case "${command}":`);
  });

  it('the extension implements each NSFileProviderReplicatedExtension requirement and the three special containers', () => {
    const source = readdirSync(join(BUNDLE, 'Extension')).filter((name) => name.endsWith('.swift')).map((name) => swift('Extension', name)).join('\n');
    for (const signature of [
      'required init(domain: NSFileProviderDomain)',
      'func invalidate()',
      'func item(for identifier: NSFileProviderItemIdentifier, request: NSFileProviderRequest, completionHandler:',
      'func fetchContents(for itemIdentifier: NSFileProviderItemIdentifier, version requestedVersion: NSFileProviderItemVersion?, request: NSFileProviderRequest, completionHandler:',
      'func createItem(basedOn itemTemplate: NSFileProviderItem, fields: NSFileProviderItemFields, contents url: URL?, options: NSFileProviderCreateItemOptions = [], request: NSFileProviderRequest, completionHandler:',
      'func modifyItem(_ item: NSFileProviderItem, baseVersion version: NSFileProviderItemVersion, changedFields: NSFileProviderItemFields, contents newContents: URL?, options: NSFileProviderModifyItemOptions = [], request: NSFileProviderRequest, completionHandler:',
      'func deleteItem(identifier: NSFileProviderItemIdentifier, baseVersion version: NSFileProviderItemVersion, options: NSFileProviderDeleteItemOptions = [], request: NSFileProviderRequest, completionHandler:',
      'func enumerator(for containerItemIdentifier: NSFileProviderItemIdentifier, request: NSFileProviderRequest) throws -> NSFileProviderEnumerator',
      'func enumerateItems(for observer: NSFileProviderEnumerationObserver, startingAt page: NSFileProviderPage)',
      'func enumerateChanges(for observer: NSFileProviderChangeObserver, from syncAnchor: NSFileProviderSyncAnchor)',
      'func currentSyncAnchor(completionHandler: @escaping (NSFileProviderSyncAnchor?) -> Void)',
    ]) {
      expect(source, signature).toContain(signature);
    }
    for (const container of ['.rootContainer', '.workingSet', '.trashContainer']) expect(source).toContain(`case ${container}:`);
  });
});
