#!/bin/sh
# `moetrain report` as a person opens it: a tiny MoE run's report rendered by headless Chromium
# (the Debian package `chromium`, installed here when missing and possible). The parsed page must
# hold every chart with its legend, the heatmaps' colour scales and the summary table (DOM dump),
# and the screenshot must be a real image. Exit 77 (CTest: skipped, with the reason) when Chromium
# cannot be installed.
# usage: report_renders.sh MOETRAIN CONFIG DATA_PREFIX
set -u
bin=$1 config=$2 data=$3
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for this test..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium > /tmp/moetrain-chromium-install.log 2>&1 ||
      { apt-get update -q > /dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
          >> /tmp/moetrain-chromium-install.log 2>&1; }
    browser=$(command -v chromium || true)
  fi
  if [ -z "$browser" ]; then
    echo "SKIPPED: chromium is not installed and could not be installed (apt-get install chromium)"
    exit 77
  fi
fi
set -e
d=$(mktemp -d)
"$bin" train "$config" --data-path "$data" --split 949,50,1 --num-layers 2 --hidden-size 32 --num-attention-heads 2 \
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 --train-iters 6 \
  --lr-warmup-iters 1 --log-interval 1 --eval-interval 3 --eval-iters 1 --expert-interval 1 --num-experts 4 \
  --save "$d/a" --data-cache-path "$d/cache" > "$d/a.log" 2>&1
"$bin" train "$config" --data-path "$data" --split 949,50,1 --num-layers 2 --hidden-size 32 --num-attention-heads 2 \
  --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 --train-iters 6 \
  --lr-warmup-iters 1 --log-interval 1 --eval-interval 3 --eval-iters 1 --num-experts 1 \
  --save "$d/b" --data-cache-path "$d/cache" > "$d/b.log" 2>&1
"$bin" report "$d/a" --compare "$d/b" --output "$d/report.html"
flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1600"
timeout 120 "$browser" $flags --dump-dom "file://$d/report.html" > "$d/dom.html" 2> "$d/chromium.err"
timeout 120 "$browser" $flags --screenshot="$d/report.png" "file://$d/report.html" >> "$d/chromium.err" 2>&1
charts=$(grep -o '<svg' "$d/dom.html" | wc -l)
heatmaps=$(grep -o 'class="heatmap"' "$d/dom.html" | wc -l)
legends=$(grep -o 'class="legend-entry"' "$d/dom.html" | wc -l)
scale_ticks=$(grep -o 'class="scale-tick"' "$d/dom.html" | wc -l)
summary_rows=$(grep -o '<tr data-run=' "$d/dom.html" | wc -l)
png=$(wc -c < "$d/report.png" 2>/dev/null || echo 0)
echo "rendered: $charts SVG charts ($heatmaps heatmaps, $scale_ticks colour-scale ticks, $legends legend entries)" \
  "and a summary of $summary_rows runs in the DOM, screenshot $png bytes"
if [ "$charts" -ge 7 ] && [ "$heatmaps" -eq 2 ] && [ "$scale_ticks" -eq 10 ] && [ "$legends" -ge 10 ] &&
  [ "$summary_rows" -eq 2 ] && [ "$png" -gt 20000 ] && head -c 8 "$d/report.png" | grep -q PNG; then
  echo "report renders in Chromium"
  rm -rf "$d"
  exit 0
fi
echo "FAILED; chromium said:"; tail -20 "$d/chromium.err"
exit 1
