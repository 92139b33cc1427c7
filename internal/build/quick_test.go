package build_test

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/build"
)

// An edit of the corpus: files to write (or, with an empty body, remove), and what Quick must
// do with it.
type edit struct {
	name  string
	files map[string]string
	// want: "quick" (the quick path built it), "go: WHY" (the go command built it, Why holding
	// WHY), or "error" (the build fails, with the go command's own message).
	want string
}

const libSrc = `package lib

import "strings"

// Greeting is exported: a change to it changes the export data.
const Greeting = %q

// Hello is too big to inline: its body is not export data.
func Hello(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(Greeting)
		b.WriteString(%q)
		if b.Len() > 1000 {
			panic("too long")
		}
		switch i %% 3 {
		case 0:
			b.WriteString("a")
		case 1:
			b.WriteString("b")
		default:
			b.WriteString("c")
		}
	}
	return b.String()
}

// Small is inlined into its callers: its body is export data.
func Small() int { return %d }
`

const multiMain = `package main

import (
	"fmt"
	"time"

	"example.com/multi/lib"
)

const local = %q

func main() {
	fmt.Println(lib.Hello(3), lib.Small(), local, time.Unix(0, %d))
}
`

const helloMain = `package main

import (
	"fmt"
	"net/http"
	"time"
)

func main() {
	http.HandleFunc("/called", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, %q, time.Unix(0, %d))
	})
	fmt.Println(http.ListenAndServe("127.0.0.1:0", nil))
}
`

// The proof that Quick's binaries are go build's: over a corpus of edits of real programs,
// each built by Quick and by a plain Builder (the same flags, another output file), the two
// binaries are byte for byte the same but for the build ID's first three parts (see sameBinary),
// and each edit took the path it must: the quick one where Quick can prove go build would only
// compile the edited packages and link, the go command everywhere else.
func TestQuickMatchesGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs dozens of real go builds")
	}
	// A salt in every file: the first build compiles every package of the module (none is in the
	// build cache from an earlier run), so that Quick captures every compile.
	salt := time.Now().UnixNano()
	t.Run("hello", func(t *testing.T) {
		runCorpus(t, "example.com/hello", map[string]string{"main.go": fmt.Sprintf(helloMain, "hi", salt)}, []edit{
			{name: "first build", want: "go: no earlier build"},
			{name: "the bench's edit (time.Unix line)", files: map[string]string{"main.go": fmt.Sprintf(helloMain, "hi", salt+1)}, want: "quick"},
			{name: "a string literal", files: map[string]string{"main.go": fmt.Sprintf(helloMain, "hello there", salt+1)}, want: "quick"},
			{name: "again", files: map[string]string{"main.go": fmt.Sprintf(helloMain, "hello again", salt+2)}, want: "quick"},
			{name: "a compile error", files: map[string]string{"main.go": strings.Replace(fmt.Sprintf(helloMain, "x", salt), "fmt.Fprintln(w,", "fmt.Fprintln(nosuch,", 1)}, want: "error"},
			{name: "fixed", files: map[string]string{"main.go": fmt.Sprintf(helloMain, "fixed", salt+3)}, want: "quick"},
			{name: "an import added", files: map[string]string{"main.go": withOS(fmt.Sprintf(helloMain, "os", salt+3))}, want: "go: main.go: its package clause, imports"},
			{name: "after the import", files: map[string]string{"main.go": withOS(fmt.Sprintf(helloMain, "os 2", salt+4))}, want: "quick"},
			{name: "a //go:debug directive", files: map[string]string{"main.go": "//go:debug panicnil=1\n\n" + withOS(fmt.Sprintf(helloMain, "os 2", salt+4))}, want: "go: main.go: its package clause, imports"},
			{name: "go.mod changed", files: map[string]string{"go.mod": "module example.com/hello\n\ngo 1.25\n"}, want: "go: go.mod changed"},
			{name: "after go.mod", files: map[string]string{"main.go": "//go:debug panicnil=1\n\n" + withOS(fmt.Sprintf(helloMain, "done", salt+5))}, want: "quick"},
		})
	})
	t.Run("multi", func(t *testing.T) {
		// The salt at the end: a file new to the build cache, its export data unchanged.
		lib := func(greeting, body string, small int) string {
			return fmt.Sprintf(libSrc, greeting, body, small) + fmt.Sprintf("\n// %d\n", salt)
		}
		main := func(local string, n int64) string { return fmt.Sprintf(multiMain, local, n) }
		runCorpus(t, "example.com/multi", map[string]string{
			"main.go":    main("local", salt),
			"lib/lib.go": lib("hi", "body 1", 1),
		}, []edit{
			{name: "first build", want: "go: no earlier build"},
			{name: "main: a constant", files: map[string]string{"main.go": main("local 2", salt)}, want: "quick"},
			{name: "lib: a function body (a string literal in it)", files: map[string]string{"lib/lib.go": lib("hi", "body 2", 1)}, want: "quick"},
			{name: "lib: the body again", files: map[string]string{"lib/lib.go": lib("hi", "body 3", 1)}, want: "quick"},
			{name: "lib: and again", files: map[string]string{"lib/lib.go": lib("hi", "body 4", 1)}, want: "quick"},
			{name: "lib and main at once", files: map[string]string{"lib/lib.go": lib("hi", "body 5", 1), "main.go": main("local 3", salt+1)}, want: "quick"},
			{name: "lib: an exported constant", files: map[string]string{"lib/lib.go": lib("hello", "body 5", 1)}, want: "go: example.com/multi/lib: export data changed"},
			{name: "lib: an inlinable function's body", files: map[string]string{"lib/lib.go": lib("hello", "body 5", 2)}, want: "go: example.com/multi/lib: export data changed"},
			{name: "lib: body after the fallback", files: map[string]string{"lib/lib.go": lib("hello", "body 6", 2)}, want: "quick"},
			{name: "lib: an exported function's signature", files: map[string]string{
				"lib/lib.go": strings.Replace(lib("hello", "body 6", 2), "func Hello(n int) string", "func Hello(n int, _ ...bool) string", 1),
				"main.go":    main("local 4", salt+2)}, want: "go: example.com/multi/lib: export data changed"},
			{name: "lib: a compile error", files: map[string]string{"lib/lib.go": strings.Replace(lib("hello", "body 6", 2), "return b.String()", "return b.Nothing()", 1)}, want: "error"},
			{name: "lib: fixed", files: map[string]string{"lib/lib.go": strings.Replace(lib("hello", "body 7", 2), "func Hello(n int) string", "func Hello(n int, _ ...bool) string", 1)}, want: "quick"},
			{name: "lib: a file added", files: map[string]string{"lib/more.go": "package lib\n\nfunc More() int { return 3 }\n"}, want: "go: lib/more.go changed, added or removed"},
			{name: "lib: the added file's inlinable function", files: map[string]string{"lib/more.go": "package lib\n\nfunc More() int { return 3 + len(Greeting) }\n"}, want: "go: example.com/multi/lib: export data changed"},
			{name: "lib: a body, the added file compiled too", files: map[string]string{"lib/lib.go": strings.Replace(lib("hello", "body 8", 2), "func Hello(n int) string", "func Hello(n int, _ ...bool) string", 1)}, want: "quick"},
			{name: "lib: a line added to a body (what follows moves)", files: map[string]string{"lib/lib.go": strings.Replace(strings.Replace(lib("hello", "body 9", 2), "func Hello(n int) string", "func Hello(n int, _ ...bool) string", 1), "var b strings.Builder", "var b strings.Builder\n\tb.Grow(8)", 1)}, want: "go: example.com/multi/lib: export data changed"},
			{name: "lib: a file removed", files: map[string]string{"lib/more.go": ""}, want: "go: lib/more.go changed, added or removed"},
			{name: "an editor's files and a test are not the build's", files: map[string]string{"lib/.lib.go.swp": "x", "lib/lib.go~": "x", "lib/lib_test.go": "package lib\n", "main.go": main("local 5", salt+3)}, want: "quick"},
		})
	})
}

// withOS adds an import to helloMain.
func withOS(src string) string { return strings.Replace(src, `"time"`, "\"time\"\n\t_ \"os\"", 1) }

func runCorpus(t *testing.T, module string, files map[string]string, edits []edit) {
	dir := t.TempDir()
	outs := t.TempDir()
	write := func(files map[string]string) {
		for name, body := range files {
			p := filepath.Join(dir, name)
			if body == "" {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				continue
			}
			writeFile(t, p, body)
		}
	}
	write(map[string]string{"go.mod": "module " + module + "\n\ngo 1.24\n"})
	write(files)
	q, plain := quickPair(t, dir, ".")
	quick := 0
	for i, e := range edits {
		write(e.files)
		qout, gout := filepath.Join(outs, fmt.Sprintf("quick.%d", i)), filepath.Join(outs, fmt.Sprintf("go.%d", i))
		res, qerr := q.Build(t.Context(), qout)
		_, gerr := plain.Build(t.Context(), gout)
		switch {
		case e.want == "error":
			var qe, ge *build.Error
			if !errors.As(qerr, &qe) || !errors.As(gerr, &ge) {
				t.Fatalf("%s: want a build error from both, got %v and %v", e.name, qerr, gerr)
			}
			if qe.Output != ge.Output {
				t.Fatalf("%s: Quick's message is not go build's:\n%s\n--- go build:\n%s", e.name, qe.Output, ge.Output)
			}
			continue
		case qerr != nil || gerr != nil:
			t.Fatalf("%s: %v / %v", e.name, qerr, gerr)
		}
		// The binary first: a wrapper that takes the quick path where it must not shows here.
		sameBinary(t, e.name, qout, gout, !res.Quick)
		switch {
		case e.want == "quick" && !res.Quick:
			t.Fatalf("%s: want the quick path, the go command built it: %s", e.name, res.Why)
		case e.want != "quick" && (res.Quick || !strings.HasPrefix(res.Why, strings.TrimPrefix(e.want, "go: "))):
			t.Fatalf("%s: want the go command because %q; quick %v, why %q", e.name, strings.TrimPrefix(e.want, "go: "), res.Quick, res.Why)
		}
		if res.Quick {
			quick++
		}
		t.Logf("%-50s quick=%-5v %v %s", e.name, res.Quick, res.Duration.Round(time.Millisecond), res.Why)
	}
	if quick == 0 {
		t.Fatal("the quick path never ran")
	}
}

// writeFile writes body to p, making its directory.
func writeFile(t testing.TB, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// quickPair is a Quick and a plain Builder of pkg in dir, with hotpod's default flags; the
// Quick is closed when the test ends.
func quickPair(t testing.TB, dir, pkg string) (*build.Quick, *build.Builder) {
	opts := build.Options{LDFlags: "-s -w"}
	q := build.NewQuick(&build.Builder{Dir: dir, Package: pkg, Options: opts})
	t.Cleanup(func() { q.Close() })
	return q, &build.Builder{Dir: dir, Package: pkg, Options: opts}
}

// sameBinary asserts that the binaries are the same but for their build IDs. A Go build ID
// reads action(binary)/action(main.a)/content(main.a)/content(binary); the ELF GNU build ID
// note holds the first 20 bytes of a hash of the Go build ID the linker was given (the content
// part then being the binary's action ID). So: both Go IDs are as long, sit at the same offsets,
// end in the same content part (the hash of every other byte); each GNU build ID is its own Go
// ID's; and every byte outside them is the same. A binary the go command built (exact) is go
// build's, build IDs included.
func sameBinary(t testing.TB, name, quick, gobuild string, exact bool) {
	t.Helper()
	qb, qid, qgnu := readBinary(t, quick)
	gb, gid, ggnu := readBinary(t, gobuild)
	qfi, _ := os.Stat(quick)
	gfi, _ := os.Stat(gobuild)
	if qfi.Mode() != gfi.Mode() {
		t.Errorf("%s: mode %v, go build's %v", name, qfi.Mode(), gfi.Mode())
	}
	if exact {
		if !bytes.Equal(qb, gb) {
			t.Fatalf("%s: built by the go command, yet not go build's binary (%s, %s)", name, qid, gid)
		}
		return
	}
	qp, gp := strings.Split(qid, "/"), strings.Split(gid, "/")
	if len(qid) != len(gid) || len(qp) != 4 || len(gp) != 4 || qp[3] != gp[3] {
		t.Fatalf("%s: build IDs %s and %s: not the same content", name, qid, gid)
	}
	if qid == gid {
		t.Fatalf("%s: the quick build has go build's build ID %s: it cannot", name, qid)
	}
	qat, gat := offsets(qb, qid), offsets(gb, gid)
	if fmt.Sprint(qat) != fmt.Sprint(gat) || len(qat) == 0 {
		t.Fatalf("%s: the build IDs are at %v and %v", name, qat, gat)
	}
	if len(qb) != len(gb) {
		t.Fatalf("%s: %d bytes, go build's %d", name, len(qb), len(gb))
	}
	for _, at := range qat {
		clear(qb[at : at+len(qid)])
		clear(gb[at : at+len(gid)])
	}
	for _, n := range []struct {
		b   []byte
		gnu gnuNote
		id  []string
	}{{qb, qgnu, qp}, {gb, ggnu, gp}} {
		linked := strings.Join([]string{n.id[0], n.id[1], n.id[2], n.id[0]}, "/") // as the linker got it
		sum := sha256.Sum256([]byte(linked))
		sum[0] ^= 0xff // cmd/internal/hash.Sum32
		if n.gnu.size != 20 || !bytes.Equal(n.b[n.gnu.at:n.gnu.at+20], sum[:20]) {
			t.Fatalf("%s: the GNU build ID is not the one of build ID %s", name, linked)
		}
		clear(n.b[n.gnu.at : n.gnu.at+n.gnu.size])
	}
	if qgnu != ggnu {
		t.Fatalf("%s: GNU build ID notes at %v and %v", name, qgnu, ggnu)
	}
	if i := firstDiff(qb, gb); i >= 0 {
		t.Fatalf("%s: byte %d differs from go build's (build IDs %s, %s)", name, i, qid, gid)
	}
}

func offsets(b []byte, id string) []int {
	var at []int
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(id))
		if i < 0 {
			return at
		}
		at = append(at, off+i)
		off += i + len(id)
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// gnuNote is where a binary's GNU build ID is.
type gnuNote struct{ at, size int }

// readBinary reads a binary, its Go build ID (its ELF note .note.go.buildid) and where its GNU
// build ID is (.note.gnu.build-id, past the note's header and "GNU\x00").
func readBinary(t testing.TB, path string) ([]byte, string, gnuNote) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".note.go.buildid")
	if s == nil {
		t.Fatalf("%s: no build ID note", path)
		return nil, "", gnuNote{}
	}
	note, err := s.Data()
	if err != nil || len(note) < 16 {
		t.Fatalf("%s: build ID note: %v", path, err)
	}
	namesz, descsz := binary.LittleEndian.Uint32(note), binary.LittleEndian.Uint32(note[4:])
	desc := note[12+(namesz+3)&^3:]
	gnu := f.Section(".note.gnu.build-id")
	if gnu == nil {
		t.Fatalf("%s: no GNU build ID note", path)
		return nil, "", gnuNote{} // t is a testing.TB: staticcheck cannot tell Fatalf does not return
	}
	return b, string(desc[:descsz]), gnuNote{at: int(gnu.Offset) + 16, size: int(gnu.Size) - 16}
}

// Settings Quick cannot serve turn it off for the session: after one go build -x that finds
// out, each build is the plain go build (no -x, no go list), and says why.
func TestQuickOff(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real go builds")
	}
	for _, c := range []struct {
		name string
		env  []string
		git  bool
		why  string
	}{
		{"version control stamped", []string{"GOFLAGS=-buildvcs=true"}, true, "the binary stamps version control information"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, body string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("go.mod", "module example.com/off\n\ngo 1.24\n")
			write("main.go", fmt.Sprintf(helloMain, "off", 1))
			if c.git {
				if _, err := exec.LookPath("git"); err != nil {
					t.Skip("no git")
				}
				for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"}} {
					cmd := exec.Command("git", args...)
					cmd.Dir = dir
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("git %v: %v: %s", args, err, out)
					}
				}
			}
			q := build.NewQuick(&build.Builder{Dir: dir, Package: ".", Options: build.Options{LDFlags: "-s -w", Env: c.env}})
			t.Cleanup(func() { q.Close() })
			for i := range 2 {
				write("main.go", fmt.Sprintf(helloMain, "off", i+2))
				res, err := q.Build(t.Context(), filepath.Join(t.TempDir(), "app"))
				if err != nil {
					t.Fatal(err)
				}
				if res.Quick || !strings.Contains(res.Why, c.why) || (i == 1 && !strings.HasPrefix(res.Why, "quick builds are off: "+c.why)) {
					t.Fatalf("build %d: quick %v, why %q; want %q", i+1, res.Quick, res.Why, c.why)
				}
			}
		})
	}
}
