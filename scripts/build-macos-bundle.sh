#!/usr/bin/env bash
# Builds tmount.app with its FileProvider extension from bundle/ using swiftc
# (no Xcode project), signs both, and checks the signature and the property
# lists. Runs on macOS with the Xcode command line tools.
#
#   scripts/build-macos-bundle.sh [--out DIR] [--install [DIR]]
#
#   --out DIR        where tmount.app is assembled (default: build/macos)
#   --install [DIR]  then copy it to DIR (default: ~/Applications), register it
#                    with LaunchServices and launch it once, which registers
#                    the extension
#
# Environment:
#   TMOUNT_SIGN_IDENTITY  codesign identity (default "-": ad-hoc, for this Mac)
#   TMOUNT_TEAM_ID        Apple team ID; the App Group becomes <team>.dev.tmount
#   TMOUNT_APP_GROUP      the App Group (default: <team>.dev.tmount, or
#                         group.dev.tmount without a team)
#   TMOUNT_BUNDLE_ID      the app's bundle identifier (default: dev.tmount.app)
#   TMOUNT_APP_PROFILE    provisioning profile to embed in the app
#   TMOUNT_APPEX_PROFILE  provisioning profile to embed in the extension
#   TMOUNT_ARCHS          architectures, space-separated (default: "arm64 x86_64")
set -euo pipefail

usage() {
  sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
  echo "build-macos-bundle: $*" >&2
  exit 1
}

step() {
  echo "build-macos-bundle: $*"
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/build/macos"
install_dir=""

while [ "$#" -gt 0 ]; do
  case "$1" in
    --out)
      [ "$#" -ge 2 ] || die "--out needs a directory"
      out="$2"
      shift 2
      ;;
    --install)
      if [ "$#" -ge 2 ] && [ "${2#--}" = "$2" ]; then
        install_dir="$2"
        shift 2
      else
        install_dir="$HOME/Applications"
        shift
      fi
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument '$1'"
      ;;
  esac
done

[ "$(uname -s)" = Darwin ] || die "tmount.app is a macOS bundle: build it on macOS (this is $(uname -s))"
for tool in xcrun codesign plutil lipo ditto; do
  command -v "$tool" >/dev/null || die "$tool is missing; install the Xcode command line tools with: xcode-select --install"
done
plistbuddy=/usr/libexec/PlistBuddy
[ -x "$plistbuddy" ] || die "$plistbuddy is missing"

identity="${TMOUNT_SIGN_IDENTITY:--}"
bundle_id="${TMOUNT_BUNDLE_ID:-dev.tmount.app}"
if [ -n "${TMOUNT_APP_GROUP:-}" ]; then
  group="$TMOUNT_APP_GROUP"
elif [ -n "${TMOUNT_TEAM_ID:-}" ]; then
  group="$TMOUNT_TEAM_ID.dev.tmount"
else
  group="group.dev.tmount"
fi
read -r -a archs <<<"${TMOUNT_ARCHS:-arm64 x86_64}"
[ "${#archs[@]}" -gt 0 ] || die "TMOUNT_ARCHS names no architecture"
min_macos=12.0
version="$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$root/package.json" | head -n 1)"
[ -n "$version" ] || die "cannot read the version from package.json"

# The values end up in plists through sed: only characters that need no escaping.
for value in "$group" "$bundle_id" "$version"; do
  [[ "$value" =~ ^[A-Za-z0-9.-]+$ ]] || die "'$value' may contain only letters, digits, '.' and '-'"
done

sdk="$(xcrun --sdk macosx --show-sdk-path)"
sdk_version="$(xcrun --sdk macosx --show-sdk-version)"
swiftc="$(xcrun --sdk macosx --find swiftc)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

app="$out/tmount.app"
# src/platform/host-facts.ts and src/backends/fileprovider/host-app.ts look for exactly this name.
appex="$app/Contents/PlugIns/tmount FileProvider.appex"

host_sources=("$root"/bundle/App/*.swift "$root"/bundle/Shared/*.swift)
appex_sources=("$root"/bundle/Extension/*.swift "$root"/bundle/Shared/*.swift)
host_slices=()
appex_slices=()
for arch in "${archs[@]}"; do
  target="$arch-apple-macos$min_macos"
  step "compiling the app for $target"
  "$swiftc" -sdk "$sdk" -target "$target" -O -module-name TmountHost \
    -framework FileProvider \
    "${host_sources[@]}" -o "$work/tmount-$arch"
  step "compiling the extension for $target"
  # An app extension starts in NSExtensionMain, which Xcode links as the
  # entry point; without it the process exits at once and pluginkit finds
  # nothing to talk to.
  "$swiftc" -sdk "$sdk" -target "$target" -O -module-name TmountFileProvider \
    -parse-as-library -application-extension \
    -framework FileProvider \
    -Xlinker -e -Xlinker _NSExtensionMain \
    "${appex_sources[@]}" -o "$work/TmountFileProvider-$arch"
  host_slices+=("$work/tmount-$arch")
  appex_slices+=("$work/TmountFileProvider-$arch")
done

fill() {
  sed -e 's/[$](TMOUNT_APP_GROUP)/'"$group"'/g' \
    -e 's/[$](TMOUNT_BUNDLE_ID)/'"$bundle_id"'/g' \
    -e 's/[$](TMOUNT_VERSION)/'"$version"'/g' \
    -e 's/[$](TMOUNT_BUILD)/'"$version"'/g' \
    "$1" >"$2"
  if grep -q '[$](TMOUNT_' "$2"; then
    die "$1 uses a \$(TMOUNT_...) value this script does not fill in"
  fi
}

step "assembling $app"
rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$appex/Contents/MacOS"
lipo -create "${host_slices[@]}" -output "$app/Contents/MacOS/tmount"
lipo -create "${appex_slices[@]}" -output "$appex/Contents/MacOS/TmountFileProvider"
fill "$root/bundle/App/Info.plist" "$app/Contents/Info.plist"
fill "$root/bundle/Extension/Info.plist" "$appex/Contents/Info.plist"
printf 'APPL????' >"$app/Contents/PkgInfo"
for plist in "$app/Contents/Info.plist" "$appex/Contents/Info.plist"; do
  # What Xcode records about the SDK; pluginkit compares them with the system's.
  plutil -replace DTPlatformName -string macosx "$plist"
  plutil -replace DTPlatformVersion -string "$sdk_version" "$plist"
  plutil -replace DTSDKName -string "macosx$sdk_version" "$plist"
done
fill "$root/bundle/App/tmount.entitlements" "$work/app.entitlements"
fill "$root/bundle/Extension/TmountFileProvider.entitlements" "$work/appex.entitlements"
if [ -n "${TMOUNT_APP_PROFILE:-}" ]; then
  cp "$TMOUNT_APP_PROFILE" "$app/Contents/embedded.provisionprofile"
fi
if [ -n "${TMOUNT_APPEX_PROFILE:-}" ]; then
  cp "$TMOUNT_APPEX_PROFILE" "$appex/Contents/embedded.provisionprofile"
fi

step "signing with identity '$identity'"
sign=(codesign --force --sign "$identity" --options runtime)
if [ "$identity" = "-" ]; then
  sign+=(--timestamp=none)
else
  sign+=(--timestamp)
fi
# Inside out: the extension is sealed into the app's signature.
"${sign[@]}" --entitlements "$work/appex.entitlements" "$appex"
"${sign[@]}" --entitlements "$work/app.entitlements" "$app"

step "verifying"
codesign --verify --deep --strict --verbose=2 "$app"
codesign --verify --strict --verbose=2 "$appex"
plutil -lint "$app/Contents/Info.plist" "$appex/Contents/Info.plist" \
  "$work/app.entitlements" "$work/appex.entitlements" \
  "$root/bundle/App/Info.plist" "$root/bundle/Extension/Info.plist" \
  "$root/bundle/App/tmount.entitlements" "$root/bundle/Extension/TmountFileProvider.entitlements"

# The signatures must carry the entitlements: codesign silently signs
# without them when it is handed something that is not an executable.
codesign --display --xml --entitlements - "$appex" >"$work/appex.signed.plist" 2>/dev/null
codesign --display --xml --entitlements - "$app" >"$work/app.signed.plist" 2>/dev/null
expect() {
  local file="$1" key="$2" wanted="$3" found
  found="$("$plistbuddy" -c "Print :$key" "$file" 2>/dev/null || true)"
  [ "$found" = "$wanted" ] || die "$(basename "$file"): $key is '$found', expected '$wanted'"
}
expect "$work/appex.signed.plist" com.apple.security.app-sandbox true
expect "$work/appex.signed.plist" com.apple.security.network.client true
expect "$work/appex.signed.plist" com.apple.security.application-groups:0 "$group"
expect "$work/app.signed.plist" com.apple.security.application-groups:0 "$group"
expect "$appex/Contents/Info.plist" NSExtension:NSExtensionFileProviderDocumentGroup "$group"
expect "$appex/Contents/Info.plist" NSExtension:NSExtensionPointIdentifier com.apple.fileprovider-nonui
expect "$appex/Contents/Info.plist" CFBundleIdentifier "$bundle_id.FileProvider"
expect "$app/Contents/Info.plist" CFBundleIdentifier "$bundle_id"
for binary in "$app/Contents/MacOS/tmount" "$appex/Contents/MacOS/TmountFileProvider"; do
  for arch in "${archs[@]}"; do
    lipo "$binary" -verify_arch "$arch" || die "$binary has no $arch slice"
  done
done
step "built $app (App Group $group, version $version, $(printf '%s ' "${archs[@]}"| sed 's/ $//'))"

if [ -n "$install_dir" ]; then
  step "installing into $install_dir"
  mkdir -p "$install_dir"
  rm -rf "$install_dir/tmount.app"
  ditto "$app" "$install_dir/tmount.app"
  lsregister=/System/Library/Frameworks/CoreServices.framework/Frameworks/LaunchServices.framework/Support/lsregister
  if [ -x "$lsregister" ]; then
    "$lsregister" -f "$install_dir/tmount.app"
  fi
  # The first launch is what registers the extension with pluginkit; the app exits at once.
  open -g -W "$install_dir/tmount.app"
  step "installed $install_dir/tmount.app"
  case "$install_dir" in
    /Applications | "$HOME/Applications") ;;
    *) step "tmount looks in /Applications and ~/Applications: set TMOUNT_APP=$install_dir/tmount.app" ;;
  esac
  step "if Finder shows no location after mounting, enable tmount under System Settings > Privacy & Security > Extensions > File Providers"
fi
