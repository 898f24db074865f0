#!/usr/bin/env bash
# The PDF development corpus (issue 12): real manuals of 30+ pages with outlines, tables and running
# headers, rebuilt from Debian packages into an ignored folder (nothing big is committed).
# Not the public eval set; not the Debian Policy manual, Developer's Reference or FHS (kept for the
# independent evaluation).
#
#   R manuals (r-doc-pdf: texinfo, outlines, running chapter headers, footnotes, multitables)
#   gnuplot manual (gnuplot-doc: LaTeX, outline, ruled tables)
#   Python's datetime and stdtypes library pages (python3.11-doc HTML) printed by headless Chromium
#   with its outline and its running header/footer (date, title, URL, page x/y) and ruled tables.
#
# Usage: eval/corpus/fetch_pdfs.sh [OUT_DIR]     (default: eval/corpus/pdfs, git-ignored)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/pdfs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download r-doc-pdf gnuplot-doc python3.11-doc >/dev/null 2>&1
for f in *.deb; do dpkg -x "$f" x; done
mkdir -p "$out"
r=x/usr/share/doc/r-doc-pdf/manual
for n in R-data R-lang R-admin R-intro R-FAQ; do
  cp "$r/$n.pdf" "$out/$n.pdf"
done
cp x/usr/share/doc/gnuplot/gnuplot.pdf "$out/gnuplot.pdf"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chromium" ]; then
  for n in datetime stdtypes; do
    timeout 180 "$chromium" --headless --no-sandbox --disable-gpu --generate-pdf-document-outline \
      --print-to-pdf="$out/python-$n.pdf" "file://$work/x/usr/share/doc/python3.11/html/library/$n.html" \
      >/dev/null 2>&1 || echo "chromium could not print $n.html" >&2
  done
else
  echo "chromium not found: the two printed Python pages are skipped" >&2
fi
for f in "$out"/*.pdf; do
  printf '%-28s %s pages\n' "$(basename "$f")" "$(pdfinfo "$f" 2>/dev/null | awk '/^Pages:/{print $2}')"
done
