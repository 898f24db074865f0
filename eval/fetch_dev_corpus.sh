#!/usr/bin/env bash
# The renderer's development corpus: real, path- and code-heavy technical documents that are not in the
# public eval set (git manuals, the Debian Reference, the bash manual, nginx example configs), fetched from
# Debian packages so nothing big is committed.   Usage: eval/fetch_dev_corpus.sh [OUT_DIR]
set -euo pipefail
out=${1:-${TMPDIR:-/tmp}/kb-dev-corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download git-doc debian-reference-en bash-doc nginx-doc >/dev/null
for f in *.deb; do dpkg -x "$f" x; done
mkdir -p "$out"
git=x/usr/share/doc/git-doc
for n in git-credential-store git-http-backend gitignore gitmodules git-worktree; do
  cp "$git/$n.html" "$out/$n.html"
done
# PDF excerpts: the Debian Reference's contents pages (dot leaders) and a path-heavy chapter; a bash manual chapter.
pdfseparate 2>/dev/null -f 5 -l 6 x/usr/share/debian-reference/debian-reference.en.pdf p-%03d.pdf
pdfunite p-005.pdf p-006.pdf "$out/debian-reference-contents.pdf"
rm -f p-*.pdf
pdfseparate 2>/dev/null -f 60 -l 64 x/usr/share/debian-reference/debian-reference.en.pdf p-%03d.pdf
pdfunite p-*.pdf "$out/debian-reference-filesystem.pdf"
rm -f p-*.pdf
pdfseparate 2>/dev/null -f 20 -l 23 x/usr/share/doc/bash/bashref.pdf p-%03d.pdf
pdfunite p-*.pdf "$out/bashref-expansions.pdf"
rm -f p-*.pdf
cp x/usr/share/doc/nginx/examples/virtual_hosts "$out/nginx-virtual-hosts.txt"
cp x/usr/share/doc/nginx/examples/wordpress "$out/nginx-wordpress.txt"
ls -l "$out"
