#!/usr/bin/env bash
# Sign, notarize and package dist/VSearch.app (built by `python installer/build.py` on macOS arm64) as
# dist/VSearch-VERSION-macos-arm64.dmg.
#
#   installer/macos/make_dmg.sh VERSION
#
# With the signing secrets in the environment it signs with the Developer ID and notarizes:
#   MACOS_CERTIFICATE_P12      the Developer ID Application certificate and key, .p12, base64-encoded
#   MACOS_CERTIFICATE_PASSWORD its password
#   MACOS_SIGN_IDENTITY        e.g. "Developer ID Application: Name (TEAMID)"
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   notarization (an app-specific password)
# Without them it says so, signs ad hoc (arm64 code must carry a signature to run at all) and builds an unsigned
# DMG: it opens after right-click > Open, and Gatekeeper warns.
set -euo pipefail
cd "$(dirname "$0")/../.."

APP_NAME="VSearch"
VERSION="${1:?usage: installer/macos/make_dmg.sh VERSION}"
APP="dist/${APP_NAME}.app"
DMG="dist/${APP_NAME}-${VERSION}-macos-arm64.dmg"
ENTITLEMENTS="installer/macos/entitlements.plist"

[ -d "$APP" ] || { echo "make_dmg.sh: $APP is missing; run python installer/build.py first" >&2; exit 1; }
plist_version=$(/usr/libexec/PlistBuddy -c "Print :CFBundleShortVersionString" "$APP/Contents/Info.plist")
if [ "$plist_version" != "$VERSION" ]; then
    echo "make_dmg.sh: $APP is version $plist_version, not $VERSION" >&2
    exit 1
fi

signing=0
if [ -n "${MACOS_CERTIFICATE_P12:-}" ] && [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    signing=1
fi

sign() {  # sign one path with the hardened runtime, a timestamp and the entitlements
    codesign --force --options runtime --timestamp --entitlements "$ENTITLEMENTS" --sign "$MACOS_SIGN_IDENTITY" "$@"
}

if [ "$signing" = 1 ]; then
    echo "Signing with: $MACOS_SIGN_IDENTITY"
    KEYCHAIN="$RUNNER_TEMP/vsearch-signing.keychain-db"
    KEYCHAIN_PASSWORD=$(uuidgen)
    echo "$MACOS_CERTIFICATE_P12" | base64 --decode > "$RUNNER_TEMP/cert.p12"
    security create-keychain -p "$KEYCHAIN_PASSWORD" "$KEYCHAIN"
    security set-keychain-settings -lut 21600 "$KEYCHAIN"
    security unlock-keychain -p "$KEYCHAIN_PASSWORD" "$KEYCHAIN"
    security import "$RUNNER_TEMP/cert.p12" -P "$MACOS_CERTIFICATE_PASSWORD" -A -t cert -f pkcs12 -k "$KEYCHAIN"
    security list-keychain -d user -s "$KEYCHAIN"
    rm -f "$RUNNER_TEMP/cert.p12"
    xcrun notarytool store-credentials vsearch-notary --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" --keychain "$KEYCHAIN"

    # Inside out: Mach-O files collected as data first (torch_shm_manager), then every library, the Qt
    # frameworks, the executable, and last the app itself. --deep would not apply the entitlements inside.
    sign_each() { while IFS= read -r -d '' path; do sign "$path"; done; }
    find "$APP/Contents" -type f -path "*/torch/bin/*" -print0 | sign_each
    find "$APP/Contents" -type f \( -name "*.so" -o -name "*.dylib" \) -print0 | sign_each
    find "$APP/Contents/Frameworks" -type d -name "*.framework" -prune -print0 | sign_each
    [ -f "$APP/Contents/Frameworks/Python" ] && sign "$APP/Contents/Frameworks/Python"
    sign "$APP/Contents/MacOS/$APP_NAME"
    sign "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"

    ditto -c -k --keepParent "$APP" "dist/${APP_NAME}-notarize.zip"
    xcrun notarytool submit "dist/${APP_NAME}-notarize.zip" --keychain-profile vsearch-notary \
        --keychain "$KEYCHAIN" --wait
    xcrun stapler staple "$APP"
    rm -f "dist/${APP_NAME}-notarize.zip"
else
    msg="No macOS signing secrets (MACOS_CERTIFICATE_P12, MACOS_SIGN_IDENTITY): skipping Developer ID signing and"
    msg="$msg notarization; the app is signed ad hoc and the DMG is unsigned (Gatekeeper will warn users)."
    echo "::warning::$msg"
    codesign --force --deep --sign - "$APP"
fi

# The disk image: the app and a link to /Applications to drag it onto.
STAGING=$(mktemp -d)
trap 'rm -rf "$STAGING"' EXIT
ditto "$APP" "$STAGING/${APP_NAME}.app"
ln -s /Applications "$STAGING/Applications"
rm -f "$DMG"
hdiutil create -volname "$APP_NAME" -srcfolder "$STAGING" -ov -format UDZO "$DMG"

if [ "$signing" = 1 ]; then
    codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$DMG"
    xcrun notarytool submit "$DMG" --keychain-profile vsearch-notary --keychain "$KEYCHAIN" --wait
    xcrun stapler staple "$DMG"
    security delete-keychain "$KEYCHAIN"
fi
echo "built $DMG ($(du -h "$DMG" | cut -f1))"
