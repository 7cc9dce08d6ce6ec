#!/bin/sh
# An installed moetrain is relocatable: `cmake --install BUILD --prefix $d/a`, then the whole tree
# moved to $d/b, and the moved program (run from a folder outside the source and build trees)
# tokenizes, preprocesses the installed Tiny Shakespeare, trains the installed tiny-dense config
# for 2 iterations with the default (bundled) tokenizer and generates from the checkpoint. The
# binary holds no path of the source's assets. MOETRAIN_ASSETS overrides the lookup, and a binary
# without its share/ folder fails with a message naming where it looked.
# usage: install_relocated.sh CMAKE BUILD_DIR SOURCE_DIR
set -eu
cmake=$1 build=$2 src=$3
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$cmake" --install "$build" --prefix "$d/a" > "$d/install.log"
mv "$d/a" "$d/b"
p=$d/b
test -x "$p/bin/moetrain"
test -f "$p/share/moetrain/assets/gpt2/encoder.json"
test -f "$p/share/moetrain/configs/tiny-dense.yaml"
if grep -q -a "$src/assets" "$p/bin/moetrain"; then
  echo "the installed binary holds the path '$src/assets'"
  exit 1
fi
cd "$d"
ids=$(echo "Hello world" | "$p/bin/moetrain" tokenize)
test "$ids" = "15496 995 198" || { echo "tokenize gave '$ids'"; exit 1; }
"$p/bin/moetrain" preprocess --input "$p/share/moetrain/assets/tinyshakespeare/input.txt" --input-format text \
  --text-documents paragraph --output-prefix "$d/shakespeare" --append-eod > "$d/preprocess.log" 2>&1
"$p/bin/moetrain" train "$p/share/moetrain/configs/tiny-dense.yaml" --data-path "$d/shakespeare_text_document" \
  --train-iters 2 --num-layers 1 --hidden-size 16 --num-attention-heads 2 --seq-length 16 \
  --max-position-embeddings 16 --micro-batch-size 2 --global-batch-size 2 --lr-warmup-iters 1 --eval-interval 2 \
  --eval-iters 1 --save "$d/run" > "$d/train.log" 2>&1 || { tail -5 "$d/train.log"; exit 1; }
test -f "$d/run/iter_0000002/model.safetensors"
"$p/bin/moetrain" generate --load "$d/run" --prompt "ROMEO:" --max-new-tokens 3 > "$d/generate.log" 2>&1 \
  || { tail -5 "$d/generate.log"; exit 1; }
# MOETRAIN_ASSETS points elsewhere; a lone binary names the folder it looked in
ids=$(echo "Hello world" | MOETRAIN_ASSETS="$p/share/moetrain/assets" "$p/bin/moetrain" tokenize)
test "$ids" = "15496 995 198"
mkdir -p "$d/lone/bin"
cp "$p/bin/moetrain" "$d/lone/bin/"
if echo hi | "$d/lone/bin/moetrain" tokenize > "$d/lone.log" 2>&1; then
  echo "a binary without its assets tokenized"; exit 1
fi
grep -q "$d/lone/share/moetrain/assets/gpt2/" "$d/lone.log" || { cat "$d/lone.log"; exit 1; }
if echo hi | MOETRAIN_ASSETS="$d/nowhere" "$p/bin/moetrain" tokenize > "$d/env.log" 2>&1; then
  echo "MOETRAIN_ASSETS naming an empty place tokenized"; exit 1
fi
grep -q "$d/nowhere/gpt2/" "$d/env.log" || { cat "$d/env.log"; exit 1; }
echo "installed, moved to $p: tokenize, preprocess, train and generate work; MOETRAIN_ASSETS and the error checked"
