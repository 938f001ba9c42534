#!/usr/bin/env bash
# Pack gbdesk.app into a compressed disk image with an Applications link to drag it onto.
#   installers/macos/build-dmg.sh APP_PATH OUT_DMG
# APP_PATH is dist/gbdesk.app from installers/pyinstaller/build.py. Runs on macOS (hdiutil).
set -euo pipefail
app=${1:?usage: build-dmg.sh APP_PATH OUT_DMG}
dmg=${2:?usage: build-dmg.sh APP_PATH OUT_DMG}
[[ -d $app/Contents/MacOS ]] || { echo "error: $app is not an app bundle" >&2; exit 1; }
stage=$(mktemp -d "${TMPDIR:-/tmp}/gbdesk-dmg.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
rm -f "$dmg"
hdiutil create -volname gbdesk -srcfolder "$stage" -fs HFS+ -format UDZO -imagekey zlib-level=9 "$dmg"
echo "dmg: $dmg ($(( $(stat -f %z "$dmg") / 1000000 )) MB)"
