#!/bin/sh
# TensorBoard event files read by the real client: the `tensorboard` package (PyPI), installed in a
# throwaway virtualenv, reads back every scalar with its tag, step and value (float32-equal), after
# checking every record's CRCs with tensorboard's own CRC-32C and the file-version event first.
# The expected scalars are worked out here from the records, with Megatron-DeepSpeed's tag names
# written out independently of the C++ mapping (train/tensorboard.cpp). Exit 77 (CTest: skipped,
# with the reason) when the virtualenv or the package cannot be installed.
#
# Part 1: moetrain_tensorboard_writer writes synthetic metrics records (RECORDS.jsonl) through the
#   mapping, once with every --log-*-to-tensorboard group and once with none.
# Part 2 (with --train): a 4-iteration `moetrain train --tensorboard-dir` of a tiny MoE model; its
#   event file must hold the scalars of its own metrics.jsonl, the listed core tags among them.
#
# usage: tensorboard_reads_scalars.sh WRITER RECORDS.jsonl [--train MOETRAIN CONFIG DATA_PREFIX]
set -u
writer=$1 records=$2
shift 2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
skip() {
  echo "SKIPPED: $1"
  exit 77
}

# --- the client, in a throwaway virtualenv
python3 -m venv "$d/venv" > "$d/venv.log" 2>&1 ||
  skip "python3 -m venv failed (Debian: apt-get install python3-venv): $(tail -1 "$d/venv.log")"
echo "installing tensorboard (PyPI) into a throwaway virtualenv for this test..."
timeout 600 "$d/venv/bin/pip" install -q --disable-pip-version-check tensorboard > "$d/pip.log" 2>&1 ||
  skip "the tensorboard package could not be installed (pip install tensorboard): $(tail -1 "$d/pip.log")"
py=$d/venv/bin/python

cat > "$d/check.py" << 'EOF'
"""check.py RECORDS.jsonl FOLDER all|none [REQUIRED_TAG...]: the event file in FOLDER holds exactly
the scalars of the records, read back by tensorboard's EventAccumulator."""
import glob, json, os, re, struct, sys, time

import tensorboard
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

records_path, folder, options = sys.argv[1:4]
required = sys.argv[4:]
all_options = options == "all"
records = [json.loads(line) for line in open(records_path) if line.strip()]


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def expected_scalars():
    """tag -> [(step, float32 value)]: megatron/training.py's training_log and
    evaluate_and_print_results tags (with their ' vs samples' / ' vs tokens' copies), the MoE layers
    and the zero-shot tasks."""
    out = {}

    def add(tag, step, value):
        out.setdefault(tag, []).append((step, f32(value)))

    def on_axes(tag, r, value):
        add(tag, r["iteration"], value)
        if "consumed_samples" in r:
            add(tag + " vs samples", r["consumed_samples"], value)
        if "consumed_tokens" in r:
            add(tag + " vs tokens", r["consumed_tokens"], value)

    for r in records:
        split, it = r.get("split"), r.get("iteration")
        if split == "train":
            if "consumed_samples" in r:
                add("steps-vs-samples/y=steps,x=samples", r["consumed_samples"], it)
                add("steps-vs-samples/y=samples,x=steps", it, r["consumed_samples"])
            if "consumed_tokens" in r:
                add("steps-vs-tokens/y=steps,x=tokens", r["consumed_tokens"], it)
                add("steps-vs-tokens/y=tokens,x=steps", it, r["consumed_tokens"])
            fields = [("lr", "learning-rate/learning-rate")]
            if all_options:
                fields += [("batch_size", "batch-size/batch-size")]
            fields += [("lm_loss", "lm-loss-training/lm loss"), ("moe_loss", "lm-loss-training/moe loss"),
                       ("z_loss", "lm-loss-training/z loss"),
                       ("kd_loss", "lm-loss-training/kd loss"), ("loss_scale", "loss-scale/loss-scale"),
                       ("grad_norm", "grad-norm/grad-norm")]
            if all_options:
                fields += [("iteration_time_s", "iteration-time/iteration-time")]
            for key, tag in fields:
                if key in r:
                    on_axes(tag, r, r[key])
            if all_options:
                for name, v in r.get("optimizer", {}).items():
                    add("optimizer/%s" % name, it, v)
                    add("optimizer/%s vs tokens" % name, r["consumed_tokens"], v)
                for name, v in r.get("timers", {}).items():
                    add("%s-time" % name, it, v)
                for key, tag in [("tokens_per_s", "throughput/tokens_per_sec"), ("tflops", "throughput/tflops"),
                                 ("mfu", "throughput/mfu")]:
                    if key in r:
                        add(tag, it, r[key])
            for layer in r.get("moe_layers", []):
                prefix = "moe/layer_%d/" % (layer["layer"] + 1)  # numbered from 1, as the log line
                add(prefix + "dropped", it, layer["dropped"])
                add(prefix + "router_entropy", it, layer["entropy"])
                add(prefix + "aux_loss", it, layer["aux_loss"])
                for key in ("z_loss", "load_cv", "dead_experts", "interference", "drop_cost"):  # (when there)
                    if key in layer:
                        add(prefix + key, it, layer[key])
                counts = layer["expert_counts"]
                if sum(counts) > 0:
                    add(prefix + "busiest_expert_share", it, max(counts) / sum(counts))
                    for e, c in enumerate(counts):
                        add("moe-expert-load/layer_%d/expert_%d" % (layer["layer"] + 1, e), it, c / sum(counts))
        elif split in ("valid", "test"):
            tag = "lm-loss-validation/lm loss " + ("test" if split == "test" else "validation")
            on_axes(tag, r, r["lm_loss"])
            if all_options:
                on_axes(tag + " ppl", r, r["ppl"])
        elif split == "tasks":
            for key, v in r.items():
                if key not in ("iteration", "consumed_samples", "consumed_tokens") and is_number(v):
                    add("zero-shot/" + key, it, v)
    return out


files = glob.glob(os.path.join(folder, "*"))
assert len(files) == 1, "one event file expected in %s, found %s" % (folder, files)
path = files[0]
name = os.path.basename(path)
assert re.fullmatch(r"events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+", name), "file name " + name

# every TFRecord's framing and CRCs, with tensorboard's own masked CRC-32C
data = open(path, "rb").read()
pos = n_records = 0
while pos < len(data):
    (length,) = struct.unpack_from("<Q", data, pos)
    (length_crc,) = struct.unpack_from("<I", data, pos + 8)
    assert length_crc == masked_crc32c(data[pos:pos + 8]), "record %d: length CRC" % n_records
    body = data[pos + 12:pos + 12 + length]
    (body_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
    assert len(body) == length and body_crc == masked_crc32c(body), "record %d: data CRC" % n_records
    pos += 12 + length + 4
    n_records += 1

events = list(event_file_loader.EventFileLoader(path).Load())
assert len(events) == n_records, "the loader read %d of %d records" % (len(events), n_records)
assert events[0].file_version == "brain.Event:2", "first event: %s" % events[0]
for e in events:
    assert 1.6e9 < e.wall_time <= time.time() + 1, "wall_time %s" % e.wall_time

acc = event_accumulator.EventAccumulator(folder, size_guidance={event_accumulator.SCALARS: 0})
acc.Reload()
got = {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
want = expected_scalars()
missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
assert not missing, "tags missing: %s" % missing
assert not extra, "tags not expected: %s" % extra
for tag in sorted(want):
    assert got[tag] == want[tag], "%s: read %s, expected %s" % (tag, got[tag], want[tag])
absent = [t for t in required if t not in got]
assert not absent, "required tags absent: %s" % absent
values = sum(len(v) for v in got.values())
print("tensorboard %s read %d tags, %d values (options %s) from %s" % (tensorboard.__version__, len(got), values,
                                                                      options, name))
EOF

set -e
# --- part 1: synthetic records through the mapping (a small queue: many appends to the file)
"$writer" "$records" "$d/all" --all-options --queue-size 7 > /dev/null
"$writer" "$records" "$d/none" --queue-size 1 > /dev/null
"$py" "$d/check.py" "$records" "$d/all" all 2> "$d/check.err" || { cat "$d/check.err"; exit 1; }
"$py" "$d/check.py" "$records" "$d/none" none 2> "$d/check.err" || { cat "$d/check.err"; exit 1; }

# --- part 2: a real training run's event file (moetrain train --tensorboard-dir)
if [ "${1:-}" = "--train" ]; then
  bin=$2 config=$3 data=$4
  "$bin" train "$config" --data-path "$data" --split 949,50,1 --num-layers 2 --hidden-size 32 \
    --num-attention-heads 2 --seq-length 32 --max-position-embeddings 32 --micro-batch-size 2 --global-batch-size 4 \
    --train-iters 4 --lr-warmup-iters 1 --log-interval 1 --eval-interval 2 --eval-iters 1 --expert-interval 1 \
    --num-experts 4 --save "$d/run" --data-cache-path "$d/cache" --tensorboard-dir "$d/run/tensorboard" \
    --tensorboard-queue-size 5 --log-timers-to-tensorboard --log-batch-size-to-tensorboard \
    --log-validation-ppl-to-tensorboard --log-optimizer-states-to-tensorboard > "$d/train.log" 2>&1 ||
    { tail -20 "$d/train.log"; exit 1; }
  "$py" "$d/check.py" "$d/run/metrics.jsonl" "$d/run/tensorboard" all \
    "lm-loss-training/lm loss" "lm-loss-training/lm loss vs samples" "lm-loss-training/lm loss vs tokens" \
    "learning-rate/learning-rate" "grad-norm/grad-norm" "batch-size/batch-size" "iteration-time/iteration-time" \
    "lm-loss-training/moe loss" "moe/layer_1/dropped" "moe/layer_2/router_entropy" \
    "moe-expert-load/layer_1/expert_3" "lm-loss-validation/lm loss validation" \
    "lm-loss-validation/lm loss validation ppl vs tokens" "optimizer/weight_l2" \
    2> "$d/check.err" || { cat "$d/check.err"; exit 1; }
  echo "a moetrain train run's event file reads back"
fi
echo "tensorboard reads back every scalar"
