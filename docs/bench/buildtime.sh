#!/bin/sh
# Where go build's time goes (docs/benchmarks.md): for each workload, N builds of each kind,
# interleaved, wall-clock seconds, then the medians. Kinds:
#   plain-unchanged  go build -o BIN .                      nothing edited (the go command deciding that
#                                                           everything is up to date)
#   plain-edit       go build -o BIN .                      after a one-line edit of main (the bench's edit)
#   hotpod-unchanged hotpod's build (CGO_ENABLED=0 GOGC=400 go build -o BIN -trimpath -ldflags '-s -w' .)
#   hotpod-edit      the same after a one-line edit
# An unchanged build always follows a build of the same sources with the same flags. Then one
# go build -debug-trace of an edit and one of nothing edited per workload, summed by span.
# Usage: docs/bench/buildtime.sh N   (from the repository's root; writes to stdout)
set -eu
N=${1:-7}
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/hello" "$tmp/drainapp"
cp examples/hello/main.go "$tmp/hello/"
printf 'module example.com/hello\n\ngo 1.24\n' > "$tmp/hello/go.mod"
cp examples/drainapp/main.go examples/drainapp/go.mod examples/drainapp/go.sum "$tmp/drainapp/"

now() { date +%s.%N; }
edit() { sed -i "s/time.Unix(0, [0-9]*)/time.Unix(0, $(date +%s%N))/" main.go; }
plain() { go build -o "$tmp/bin-plain" .; }
ours() { CGO_ENABLED=0 GOGC=400 go build -o "$tmp/bin-ours" -trimpath -ldflags '-s -w' .; }
timed() { # kind command...
	k=$1; shift
	t0=$(now); "$@"; t1=$(now)
	echo "$w $k $(echo "$t1 - $t0" | bc)" >> "$tmp/samples"
}

echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version)"
for w in hello drainapp; do
	cd "$tmp/$w"
	go mod download 2>/dev/null || true
	plain; ours  # warm the cache for both flag sets
	for i in $(seq "$N"); do
		# each unchanged build follows a build of the same sources with the same flags
		edit; timed plain-edit plain
		timed plain-unchanged plain
		edit; timed hotpod-edit ours
		timed hotpod-unchanged ours
	done
	edit
	go build -o "$tmp/bin-trace" -debug-trace="$tmp/$w.trace" .
	go build -o "$tmp/bin-trace" -debug-trace="$tmp/$w-unchanged.trace" .
	cd "$root"
done
echo "# end $(date -u '+%H:%M:%S UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# samples (workload kind seconds)"
cat "$tmp/samples"
echo "# medians"
python3 - "$tmp/samples" <<'EOF'
import sys, statistics, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    w, k, s = line.split()
    d[(w, k)].append(float(s))
for (w, k), v in d.items():
    print(f"{w} {k} median {statistics.median(v):.3f} s  min {min(v):.3f}  max {max(v):.3f}  n={len(v)}")
EOF
for t in hello hello-unchanged drainapp drainapp-unchanged; do
	echo "# $t: go build -debug-trace (an edit, or nothing edited), seconds by span (spans nest; the slowest 8)"
	python3 - "$tmp/$t.trace" <<'EOF'
import sys, json, collections
ev = json.load(open(sys.argv[1]))
ev = ev["traceEvents"] if isinstance(ev, dict) else ev
spans, begin = collections.defaultdict(float), {}
t_min, t_max = None, None
for e in ev:
    ts = e.get("ts")
    if ts is None:
        continue
    t_min = ts if t_min is None else min(t_min, ts)
    t_max = ts if t_max is None else max(t_max, ts)
    key = (e.get("name"), e.get("tid"), e.get("id"))
    if e.get("ph") == "B":
        begin[key] = ts
    elif e.get("ph") == "E" and key in begin:
        spans[e.get("name")] += (ts - begin.pop(key)) / 1e6
    elif e.get("ph") == "X":
        spans[e.get("name")] += e.get("dur", 0) / 1e6
print(f"whole trace {(t_max - t_min) / 1e6:.3f} s")
for name, s in sorted(spans.items(), key=lambda x: -x[1])[:8]:
    print(f"{s:8.3f} s  {name}")
EOF
done
