package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotpod/hotpod/internal/gopkg"
)

// Quick builds edits without the go command where it can prove the go command would do no
// more than it does: re-run the compiler for the edited packages and the linker, as the last
// go build ran them. It skips what a go build costs before it compiles anything (loading the
// package graph, hashing every dependency against the build cache: a fifth to a third of an
// edit's build, docs/benchmarks.md).
//
// How. When Quick has no state, it runs the Builder's go build with -x -work, reads the
// commands the go command ran (with a warm cache: the compiles of the edited packages and of
// their importers, and the link) and keeps $WORK, which holds their import configurations and
// archives. Before that build it lists the package graph (go list -deps) and records the state
// of every file the build could read that can change: the package directories outside GOROOT
// and the module cache (their Go, assembly, C, .syso files, go.mod, default.pgo; the whole tree
// of a package that embeds files), go.mod, go.sum, go.work, go.work.sum, vendor/modules.txt,
// the go.mod and go.sum of every module outside the module cache (go list -m all: a local
// replacement counts by its requirements alone), a go.work that does not exist yet in the
// build's directory or above it, a go.mod that does not exist yet between a package and its
// module's root, the go env files, the go command and the tools; and the environment. Symbolic
// links are followed, as the go command follows them.
//
// The next Build runs the quick path only if all of these hold, and otherwise runs go build
// -x -work again and starts over (Result.Why says which rule sent it there):
//   - the environment is the same and the output file does not exist yet;
//   - something changed, and every file that changed (size, modification or change time,
//     inode) is a Go file the last go build compiled (no file added or removed);
//   - each such file keeps its package clause, imports, //go:build, // +build, //go:embed and
//     //go:debug lines (what decides which files and packages the go command reads, and the
//     link's GODEBUG defaults);
//   - the last go build produced an ELF binary (GOOS=linux), stamped no version control
//     information (vcs.revision and vcs.modified change with no file edited: set
//     GOFLAGS=-buildvcs=false), used no -toolexec, -overlay or external linking;
//   - nothing changed while that go build ran.
//
// The rules on the target, the flags and version control hold for the session: once one fails
// Quick is the plain Builder, and Result.Why says why.
//
// The quick path compiles each edited package with the go command's own command line (same
// directory, environment, flags and $WORK paths), in the go command's order. For a package
// other than main, the new archive's export data must equal the old one's (byte for byte, its
// build id line aside): else its importers would need compiling again, and Quick goes back to
// go build. Then it links with the go command's command line and stamps the binary's build ID
// as the go command does. Any command that fails (a compile error above all) hands the build
// to the plain go build, whose messages are the user's to read; its failure keeps Quick's state
// (the next edit compiles every package changed since), its success drops it.
//
// Only pure Go packages (compiled -complete) are compiled again: an edit of a package with
// assembly goes to go build. The export data of a package holds the positions of its
// declarations, so an edit that adds or removes a line of a library package goes to go build
// too; an edit of main can change anything inside its bodies.
//
// What differs from go build's binary: only the Go build ID's first three parts (the link's and
// the main package's action IDs and the main package's content ID: cmd/go's hashes of its
// inputs, which Quick does not recompute; the link's action ID is made fresh, so no go command
// ever takes a Quick binary for up to date), and the ELF GNU build ID note, which the linker
// derives from the Go build ID. The fourth part, the hash of every other byte, is go build's.
// TestQuickMatchesGoBuild proves it over a corpus of edits.
//
// Quick relies on the file system's times moving with each write (as git's index does; a file
// written within two seconds of a snapshot is compared by its content too, for a same-size
// write in one clock tick) and on
// the go command's -x output, which it parses strictly: a line it does not know means no state.
type Quick struct {
	b   *Builder
	mu  sync.Mutex
	st  *quickState
	off string // why the quick path cannot serve this build's settings at all
}

// offError is a reason that holds for every build with these settings: Quick then builds with
// the plain go build, without -x or its other look-ups.
type offError struct{ why string }

func (e offError) Error() string { return e.why }

var vcsStamped = offError{"the binary stamps version control information, which changes with no file edited (set GOFLAGS=-buildvcs=false)"}

// NewQuick wraps b. Close removes the work directory it keeps.
func NewQuick(b *Builder) *Quick { return &Quick{b: b} }

// Close drops Quick's state and its work directory.
func (q *Quick) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.drop()
	q.off = "closed" // a build after Close (another service's loop still ending) keeps no state
	return nil
}

func (q *Quick) drop() {
	if q.st != nil {
		q.st.remove()
		q.st = nil
	}
}

// quickState is what the last go build ran and read.
type quickState struct {
	tmp    string // GOTMPDIR of that go build, holding $WORK
	remove func()
	script *script
	env    []string           // the go command's environment (os.Environ and Builder.Env), sorted
	tools  []string           // the environment the go command gave its tools
	track  tracked            // what to look at
	files  map[string]fileKey // as it was when the last build started
	shapes map[string]string  // each tracked Go file's shape then
	pkgs   []*quickPkg        // the compiles that may run again, in the go command's order
	byFile map[string]*quickPkg
	mode   fs.FileMode // the binary's: 0777 less the umask, as the go command sets it
}

// quickPkg is one compile the go command ran.
type quickPkg struct {
	compile tool
	files   []string // absolute
	main    bool
	export  []byte // exportData of its archive (not for main)
}

// Build is Builder.Build, by the quick path when the rules above allow it.
func (q *Quick) Build(ctx context.Context, out string) (Result, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := time.Now()
	qout := out // the quick path's: -o as the go command reads it, from its directory
	if !filepath.IsAbs(out) {
		qout = filepath.Join(q.b.Dir, out)
	}
	if q.off != "" {
		res, err := q.b.Build(ctx, out)
		res.Why = "quick builds are off: " + q.off
		return res, err
	}
	why := "no earlier build to start from"
	if q.st != nil {
		now, pkgs, reason := q.st.plan(q.b, qout)
		if reason == "" {
			err := q.st.run(ctx, q.b, pkgs, qout)
			switch {
			case err == nil:
				q.st.files = now
				res, err := q.b.post(ctx, out, t)
				res.Quick = true
				return res, err
			case ctx.Err() != nil:
				return Result{}, ctx.Err()
			case errors.Is(err, errExport):
				why = err.Error()
			default:
				// The go command says what is wrong, in its own words.
				res, berr := q.b.Build(ctx, out)
				if berr != nil {
					return res, berr // the state stays: the next edit compiles all since
				}
				q.drop()
				res.Duration, res.Why = time.Since(t), "the quick path failed ("+err.Error()+"); go build did not"
				return res, nil
			}
		} else {
			why = reason
		}
	}
	return q.capture(ctx, out, t, why)
}

var errExport = errors.New("export data changed: its importers must compile again")

// capture runs go build -x -work and keeps what the next Build needs.
func (q *Quick) capture(ctx context.Context, out string, t time.Time, why string) (Result, error) {
	q.drop()
	st, err := q.prepare(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		if off := (offError{}); errors.As(err, &off) {
			q.off = off.why
		}
		res, err2 := q.b.Build(ctx, out)
		res.Why = why + "; no state kept: " + err.Error()
		return res, err2
	}
	cmd := Command(ctx, "go", q.b.args(out, "-x", "-work")...)
	cmd.Dir = q.b.Dir
	cmd.Env = append(os.Environ(), q.b.Env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = runIn(cmd, st.tmp)
	if err != nil {
		st.remove()
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		// -x mixes the commands into go's messages: the plain build says what failed.
		res, err := q.b.Build(ctx, out)
		res.Why = why
		return res, err
	}
	if err := st.finish(stderr.String()); err != nil {
		st.remove()
		why += "; no state kept: " + err.Error()
		if off := (offError{}); errors.As(err, &off) {
			q.off = off.why
		}
	} else {
		q.st = st
	}
	res, err := q.b.post(ctx, out, t)
	res.Why = why
	return res, err
}

// goEnvExtra are the names go env prints that the go command does not set for its tools.
var goEnvExtra = []string{"GOMOD", "GOWORK", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_FFLAGS", "CGO_LDFLAGS", "PKG_CONFIG", "GOGCCFLAGS"}

// prepare asks the go command for its environment and the package graph, and records the
// state of what can change, before the build that reads it.
func (q *Quick) prepare(ctx context.Context) (*quickState, error) {
	tmp, remove, err := goTmpDir()
	if err != nil {
		return nil, err
	}
	st := &quickState{tmp: tmp, remove: remove}
	ok := false
	defer func() {
		if !ok {
			remove()
		}
	}()
	env := append(os.Environ(), q.b.Env()...)
	st.env = slices.Sorted(slices.Values(env))
	var goenv map[string]string
	if err := q.goJSON(ctx, st.tmp, &goenv, "env", "-json"); err != nil {
		return nil, err
	}
	switch {
	case goenv["GOOS"] != "linux":
		return nil, offError{fmt.Sprintf("GOOS=%s: quick builds make ELF (linux) binaries only", goenv["GOOS"])}
	case strings.Contains(goenv["GOFLAGS"], "-toolexec") || strings.Contains(goenv["GOFLAGS"], "-overlay"):
		return nil, offError{"GOFLAGS has -toolexec or -overlay"}
	}
	// The go command sets each of its settings that differs in its own environment, which its
	// tools inherit (cmd/go's main), and GOTMPDIR is this state's.
	st.tools = append(slices.Clone(env), "GOTMPDIR="+st.tmp)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range goenv {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range names {
		if !slices.Contains(goEnvExtra, k) && lookupEnv(st.tools, k) != goenv[k] {
			st.tools = append(st.tools, k+"="+goenv[k])
		}
	}

	args := []string{"list", "-deps", "-json=ImportPath,Dir,Standard,GoFiles,EmbedFiles,Module,Error,DepsErrors"}
	if q.b.Options.Tags != "" {
		args = append(args, "-tags", q.b.Options.Tags)
	}
	var pkgs []listedPkg
	if err := q.goJSON(ctx, st.tmp, &pkgs, append(args, q.b.Package)...); err != nil {
		return nil, err
	}
	if err := st.track.from(pkgs, goenv, q.b.Dir); err != nil {
		return nil, err
	}
	// Modules the build uses without a package of theirs in it (a local replacement whose only
	// role is its requirements, a workspace's other modules) shape the build through go.mod too.
	var mods []listedMod
	if err := q.goJSON(ctx, st.tmp, &mods, "list", "-m", "-json=Path,Dir,GoMod,Replace", "all"); err == nil {
		st.track.addModules(mods)
	} // else vendored (-mod=vendor lists no modules): vendor/modules.txt and its packages are tracked
	st.track.listed = pkgs
	st.files = st.track.snapshot(nil)
	st.shapes = map[string]string{}
	for p := range st.files {
		if strings.HasSuffix(p, ".go") {
			if s, ok := gopkg.Shape(p, goDebug); ok {
				st.shapes[p] = s
			}
		}
	}
	// The binary's mode, as the go command finds it: a file made 0777 under the umask.
	probe := filepath.Join(st.tmp, "umask")
	if f, err := os.OpenFile(probe, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o777); err == nil {
		fi, _ := f.Stat()
		f.Close()
		os.Remove(probe)
		st.mode = fi.Mode() & 0o777
	}
	ok = true
	return st, nil
}

// goJSON runs the go command with the build's environment and decodes its output (one JSON
// value, or a stream of them into a slice).
func (q *Quick) goJSON(ctx context.Context, tmp string, v any, args ...string) error {
	cmd := Command(ctx, "go", args...)
	cmd.Dir = q.b.Dir
	cmd.Env = append(os.Environ(), q.b.Env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runIn(cmd, tmp); err != nil {
		return fmt.Errorf("go %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	dec := json.NewDecoder(&stdout)
	switch list := v.(type) {
	case *[]listedPkg:
		return decodeAll(dec, list, args[0])
	case *[]listedMod:
		return decodeAll(dec, list, args[0])
	}
	return dec.Decode(v)
}

// decodeAll decodes a stream of JSON values into list.
func decodeAll[T any](dec *json.Decoder, list *[]T, cmd string) error {
	for {
		var v T
		if err := dec.Decode(&v); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("go %s: %v", cmd, err)
		}
		*list = append(*list, v)
	}
}

// listedMod is what Quick reads of go list -m -json.
type listedMod struct {
	Path, Dir, GoMod string
	Replace          *struct{ Dir, GoMod string }
}

// finish reads the go build's -x output and checks it against what prepare recorded.
func (st *quickState) finish(xout string) error {
	// A file written while the build ran: what the build read is not what was recorded.
	if now := st.track.snapshot(st.files); len(diff(st.files, now)) > 0 {
		return errors.New("files changed during the build")
	}
	s, err := parseScript(xout)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(s.work, st.tmp+string(filepath.Separator)) {
		return fmt.Errorf("$WORK %s is not under GOTMPDIR", s.work)
	}
	st.script = s
	if v, _ := flag(s.link.args, "-linkmode"); v == "external" {
		return offError{"the link is external"}
	}
	if id, _ := flag(s.link.args, "-buildid"); strings.Count(id, "/") != 3 {
		return fmt.Errorf("the link's build ID %q is not action/action/content/content", id)
	}
	cfg, ok := flag(s.link.args, "-importcfg")
	if !ok {
		return errors.New("the link has no -importcfg")
	}
	linked, modinfo, err := readImportcfg(cfg)
	if err != nil {
		return err
	}
	if strings.Contains(modinfo, "\nbuild\tvcs") {
		return vcsStamped
	}
	listed, byDir := map[string]bool{}, map[string]listedPkg{}
	for _, p := range st.track.listed {
		listed[p.ImportPath] = true
		if st.track.mutable(p) {
			byDir[p.Dir] = p
		}
	}
	for _, path := range linked {
		if !listed[path] {
			return fmt.Errorf("the link reads %s, which go list did not list", path)
		}
	}
	st.byFile = map[string]*quickPkg{}
	for _, c := range s.compiles {
		p, ok := compiledPkg(c)
		if !ok {
			continue
		}
		lp, found := byDir[filepath.Dir(p.files[0])]
		if !found || !sameFiles(p.files, lp) {
			continue // a package that cannot change, or one go list saw otherwise: never quick
		}
		if !p.main {
			o, _ := flag(c.args, "-o")
			if p.export, err = exportData(o); err != nil {
				return err
			}
		}
		st.pkgs = append(st.pkgs, p)
		for _, f := range p.files {
			if _, ok := st.shapes[f]; !ok {
				return fmt.Errorf("%s: cannot read its imports", f)
			}
			st.byFile[f] = p
		}
	}
	return nil
}

// compiledPkg is c as a compile Quick may run again: a pure Go package (-complete), its files
// after -pack, all in one directory.
func compiledPkg(c tool) (*quickPkg, bool) {
	i := slices.Index(c.args, "-pack")
	if i < 0 || !slices.Contains(c.args, "-complete") || i+1 == len(c.args) {
		return nil, false
	}
	p := &quickPkg{compile: c}
	for _, f := range c.args[i+1:] {
		if !strings.HasSuffix(f, ".go") {
			return nil, false
		}
		if !filepath.IsAbs(f) {
			f = filepath.Join(c.dir, f)
		}
		p.files = append(p.files, filepath.Clean(f))
		if filepath.Dir(p.files[len(p.files)-1]) != filepath.Dir(p.files[0]) {
			return nil, false
		}
	}
	name, _ := flag(c.args, "-p")
	p.main = name == "main"
	return p, filepath.IsAbs(p.files[0])
}

func sameFiles(files []string, p listedPkg) bool {
	var want []string
	for _, f := range p.GoFiles {
		want = append(want, filepath.Join(p.Dir, f))
	}
	return slices.Equal(files, want)
}

// readImportcfg reads a link's import configuration: the packages it links, and the modinfo.
func readImportcfg(path string) (pkgs []string, modinfo string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "packagefile "); ok {
			name, _, _ := strings.Cut(v, "=")
			pkgs = append(pkgs, name)
		} else if v, ok := strings.CutPrefix(line, "modinfo "); ok {
			if modinfo, err = strconv.Unquote(v); err != nil {
				return nil, "", fmt.Errorf("%s: modinfo: %v", path, err)
			}
		}
	}
	return pkgs, modinfo, nil
}

// plan says which captured packages to compile again, or why the go command must build.
func (st *quickState) plan(b *Builder, out string) (now map[string]fileKey, pkgs []*quickPkg, why string) {
	if env := slices.Sorted(slices.Values(append(os.Environ(), b.Env()...))); !slices.Equal(env, st.env) {
		return nil, nil, "the build environment changed"
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, nil, "the output file exists"
	}
	if _, err := os.Stat(st.script.work); err != nil {
		return nil, nil, "the work directory is gone"
	}
	now = st.track.snapshot(st.files)
	changed := diff(st.files, now)
	if len(changed) == 0 {
		return nil, nil, "nothing changed since the last build"
	}
	edited := map[*quickPkg]bool{}
	for _, f := range changed {
		p := st.byFile[f]
		if _, exists := now[f]; p == nil || !exists || now[f].missing {
			return nil, nil, fmt.Sprintf("%s changed, added or removed (not a Go file the last go build compiled)", st.rel(b, f))
		}
		if s, ok := gopkg.Shape(f, goDebug); !ok || s != st.shapes[f] {
			return nil, nil, fmt.Sprintf("%s: its package clause, imports or build directives changed", st.rel(b, f))
		}
		edited[p] = true
	}
	for _, p := range st.pkgs {
		if edited[p] {
			pkgs = append(pkgs, p)
		}
	}
	return now, pkgs, ""
}

func (st *quickState) rel(b *Builder, f string) string {
	if dir, err := filepath.Abs(b.Dir); err == nil {
		if r, err := filepath.Rel(dir, f); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return f
}

// run compiles pkgs and links into out with the go command's command lines.
func (st *quickState) run(ctx context.Context, b *Builder, pkgs []*quickPkg, out string) error {
	for _, p := range pkgs {
		if err := st.exec(ctx, b, p.compile, p.compile.args); err != nil {
			return err
		}
		if p.main {
			continue
		}
		o, _ := flag(p.compile.args, "-o")
		exp, err := exportData(o)
		if err != nil {
			return err
		}
		if !bytes.Equal(exp, p.export) {
			pkg, _ := flag(p.compile.args, "-p")
			return fmt.Errorf("%s: %w", pkg, errExport)
		}
	}
	// The link's command line, with a fresh action ID: the go command, which would read it
	// from the binary, must never take this binary for one it linked.
	l := st.script.link
	id, _ := flag(l.args, "-buildid")
	parts := strings.Split(id, "/")
	sum := sha256.Sum256([]byte(id + "\x00hotpod quick\x00" + strconv.FormatInt(time.Now().UnixNano(), 10)))
	parts[0] = hashToString(sum[:])
	parts[3] = parts[0]
	newID := strings.Join(parts, "/")
	args := slices.Clone(l.args)
	for i, a := range args {
		if strings.HasPrefix(a, "-buildid=") {
			args[i] = "-buildid=" + newID
		}
	}
	aout, _ := flag(args, "-o")
	os.Remove(aout)
	if err := st.exec(ctx, b, *l, args); err != nil {
		return err
	}
	if err := stampBuildID(aout, newID); err != nil {
		return err
	}
	if err := os.Chmod(aout, st.mode); err != nil {
		return err
	}
	return moveFile(aout, out)
}

// exec runs one tool as the go command did: its directory, the go command's environment and
// the command's own.
func (st *quickState) exec(ctx context.Context, b *Builder, t tool, args []string) error {
	cmd := Command(ctx, args[0], args[1:]...)
	cmd.Dir = t.dir
	if cmd.Dir == "" {
		cmd.Dir = b.Dir
	}
	// PWD as the go command sets it for each tool (exec.Cmd.Environ): the compiler trusts it
	// for the absolute paths it records, which -trimpath rewrites.
	cmd.Env = append(append(slices.Clone(st.tools), "PWD="+cmd.Dir), t.env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := runIn(cmd, st.tmp); err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(args[0]), err, strings.TrimSpace(output.String()))
	}
	return nil
}

// moveFile renames, or copies across file systems.
func moveFile(from, to string) error {
	if err := os.Rename(from, to); err == nil {
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	o, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode())
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}

func lookupEnv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// goDebug is the directive Quick adds to gopkg.Shape's: //go:debug lines set the link's
// GODEBUG defaults.
const goDebug = "//go:debug"

// listedPkg is one package of go list -deps -json.
type listedPkg struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	EmbedFiles []string
	Module     *struct {
		Path  string
		Dir   string
		GoMod string
	}
	Error      *struct{ Err string }
	DepsErrors []struct{ Err string }
}

// tracked is what a build can read that can change.
type tracked struct {
	listed   []listedPkg
	goroot   string
	modcache string
	dirs     []string // package directories: their entries a build reads (relevant)
	trees    []string // directories of packages that embed files: every entry below
	files    []string // single files: module files, the go env file, the go command
}

func (tr *tracked) mutable(p listedPkg) bool {
	return !p.Standard && p.Dir != "" && !within(p.Dir, tr.goroot) && !within(p.Dir, tr.modcache)
}

func within(path, dir string) bool {
	return dir != "" && (path == dir || strings.HasPrefix(path, dir+string(filepath.Separator)))
}

func (tr *tracked) from(pkgs []listedPkg, goenv map[string]string, dir string) error {
	tr.goroot, tr.modcache = goenv["GOROOT"], goenv["GOMODCACHE"]
	if tr.goroot == "" || tr.modcache == "" {
		return errors.New("go env has no GOROOT or GOMODCACHE")
	}
	files := map[string]bool{}
	add := func(f string) {
		if f != "" {
			files[f] = true
		}
	}
	add(goenv["GOENV"])
	add(filepath.Join(goenv["GOROOT"], "go.env"))
	switch w := goenv["GOWORK"]; w {
	case "off":
	case "":
		// None now; one created in the build's directory or above it would change the build.
		for d := dir; ; d = filepath.Dir(d) {
			add(filepath.Join(d, "go.work"))
			if filepath.Dir(d) == d {
				break
			}
		}
	default:
		add(w)
		add(w + ".sum")
	}
	if g, err := exec.LookPath("go"); err == nil {
		add(g)
	}
	add(filepath.Join(goenv["GOTOOLDIR"], "compile"))
	add(filepath.Join(goenv["GOTOOLDIR"], "link"))
	for _, p := range pkgs {
		if p.Error != nil || len(p.DepsErrors) > 0 {
			return errors.New("go list reports errors")
		}
		if !tr.mutable(p) {
			continue
		}
		if len(p.EmbedFiles) > 0 {
			tr.trees = append(tr.trees, p.Dir)
		} else {
			tr.dirs = append(tr.dirs, p.Dir)
		}
		if p.Module != nil && p.Module.GoMod != "" {
			root := filepath.Dir(p.Module.GoMod)
			add(p.Module.GoMod)
			add(filepath.Join(root, "go.sum"))
			add(filepath.Join(root, "vendor", "modules.txt"))
			// A go.mod made between the package and its module's root takes the package out of
			// the module.
			for d := p.Dir; d != root && within(d, root); d = filepath.Dir(d) {
				add(filepath.Join(d, "go.mod"))
			}
		}
	}
	tr.files = slices.Sorted(maps.Keys(files))
	return nil
}

// addModules tracks the go.mod and go.sum of every module of the build outside the module cache.
func (tr *tracked) addModules(mods []listedMod) {
	files := map[string]bool{}
	for _, f := range tr.files {
		files[f] = true
	}
	for _, m := range mods {
		for _, gomod := range []string{m.GoMod, replaced(m)} {
			if gomod != "" && !within(gomod, tr.modcache) {
				files[gomod] = true
				files[filepath.Join(filepath.Dir(gomod), "go.sum")] = true
			}
		}
	}
	tr.files = slices.Sorted(maps.Keys(files))
}

func replaced(m listedMod) string {
	if m.Replace == nil {
		return ""
	}
	return m.Replace.GoMod
}

// fileKey is what says a file changed.
type fileKey struct {
	missing      bool
	size         int64
	mode         fs.FileMode
	mtime, ctime int64
	ino          uint64
	// sum is the content's SHA-256 for a file written within racyWindow of a snapshot: a
	// same-size write in the same clock tick leaves size and times as they were (git's "racily
	// clean" entries). Set in the snapshot after one that set it, so that the two compare.
	sum [32]byte
}

// racyWindow covers the coarsest file times in use (1 s: ext3, HFS+, some NFS servers) twice.
const racyWindow = 2 * time.Second

func keyOf(fi fs.FileInfo) fileKey {
	ctime, ino := changeTime(fi)
	return fileKey{size: fi.Size(), mode: fi.Mode(), mtime: fi.ModTime().UnixNano(), ctime: ctime, ino: ino}
}

// relevant says whether the go command reads a file of this name in a package directory (it
// ignores names starting with . or _, tests, and extensions it does not know: editor files).
func relevant(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || strings.HasSuffix(name, "_test.go") {
		return false
	}
	switch filepath.Ext(name) {
	case ".go", ".c", ".cc", ".cxx", ".cpp", ".m", ".h", ".hh", ".hpp", ".hxx", ".f", ".F", ".for", ".f90",
		".s", ".S", ".sx", ".swig", ".swigcxx", ".syso":
		return true
	}
	return name == "go.mod" || name == "default.pgo"
}

// snapshot is the state of everything tracked now; prev (nil for the first) is the one it is
// to be compared with. Symbolic links are followed, as the go command follows them; a link's
// own state is kept beside its target's.
func (tr *tracked) snapshot(prev map[string]fileKey) map[string]fileKey {
	m := map[string]fileKey{}
	start := time.Now()
	put := func(p string, fi fs.FileInfo) {
		k := keyOf(fi)
		if fi.Mode().IsRegular() && (start.Sub(fi.ModTime()) < racyWindow || prev[p].sum != [32]byte{}) {
			if b, err := os.ReadFile(p); err == nil {
				k.sum = sha256.Sum256(b)
			}
		}
		m[p] = k
	}
	stat := func(p string) {
		fi, err := os.Stat(p)
		if err != nil {
			m[p] = fileKey{missing: true}
			return
		}
		put(p, fi)
		if li, err := os.Lstat(p); err == nil && li.Mode()&fs.ModeSymlink != 0 {
			m[p+" (link)"] = keyOf(li)
		}
	}
	for _, f := range tr.files {
		stat(f)
	}
	for _, d := range tr.dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			m[d] = fileKey{missing: true}
			continue
		}
		for _, e := range entries {
			if relevant(e.Name()) {
				stat(filepath.Join(d, e.Name()))
			}
		}
	}
	for _, d := range tr.trees {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				m[p] = fileKey{missing: true}
				return nil
			}
			if e.Type()&fs.ModeSymlink != 0 {
				stat(p)
			} else if fi, err := e.Info(); err == nil {
				put(p, fi)
			}
			return nil
		})
	}
	return m
}

// diff lists the paths whose state differs between two snapshots, sorted.
func diff(old, now map[string]fileKey) []string {
	var d []string
	for p, k := range now {
		if ko, ok := old[p]; !ok || ko != k {
			d = append(d, p)
		}
	}
	for p := range old {
		if _, ok := now[p]; !ok {
			d = append(d, p)
		}
	}
	sort.Strings(d)
	return d
}
