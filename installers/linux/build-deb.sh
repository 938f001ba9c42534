#!/usr/bin/env bash
# Build gbdesk_<version>_<arch>.deb from a PyInstaller bundle, with dpkg-deb.
#   installers/linux/build-deb.sh BUNDLE_DIR OUT_DIR
# BUNDLE_DIR is the one-folder bundle (dist/gbdesk, from installers/pyinstaller/build.py).
# The package installs the bundle to /opt/gbdesk, links /usr/bin/gbdesk to it, and adds the
# menu entry and the hicolor icons. DEB_COMPRESSION picks dpkg-deb's compressor (default xz,
# the smallest download; gzip or zstd build faster). Prints the .deb's path and sizes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bundle=${1:?usage: build-deb.sh BUNDLE_DIR OUT_DIR}
out=${2:?usage: build-deb.sh BUNDLE_DIR OUT_DIR}
python=${PYTHON:-python3}
compression=${DEB_COMPRESSION:-xz}
[[ -x $bundle/gbdesk ]] || { echo "error: $bundle/gbdesk is not a built bundle" >&2; exit 1; }

version=$("$python" -c "import ast,sys; t=ast.parse(open(sys.argv[1]).read()); print(next(n.value.value for n in t.body if isinstance(n, ast.Assign) and n.targets[0].id == '__version__'))" "$repo/gbdesk/__init__.py")
arch=$(dpkg --print-architecture)
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/gbdesk-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/opt" "$stage/usr/bin" "$stage/usr/share/applications" "$stage/usr/share/icons" "$stage/DEBIAN"
cp -a "$bundle" "$stage/opt/gbdesk"
ln -s /opt/gbdesk/gbdesk "$stage/usr/bin/gbdesk"
install -m 644 "$here/gbdesk.desktop" "$stage/usr/share/applications/gbdesk.desktop"
"$python" "$repo/installers/icons.py" "$stage/icons" >/dev/null
mv "$stage/icons/hicolor" "$stage/usr/share/icons/hicolor"
rm -rf "$stage/icons"

installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
depends=$(grep -v '^#' "$here/debian/depends.txt" | grep . | paste -sd, - | sed 's/,/, /g')
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_kb/" \
    -e "s/@DEPENDS@/$depends/" "$here/debian/control.in" >"$stage/DEBIAN/control"
install -m 755 "$here/debian/postinst" "$here/debian/postrm" "$stage/DEBIAN/"
# Files owned by root and world-readable, whatever the umask of the build.
chmod -R u+rwX,go+rX,go-w "$stage/opt" "$stage/usr"

deb="$out/gbdesk_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$deb" >/dev/null
deb_bytes=$(stat -c %s "$deb")
echo "deb: $deb"
echo "deb size: $((deb_bytes / 1000000)) MB ($compression), installed size: $((installed_kb / 1000)) MB"
