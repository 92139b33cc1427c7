package build

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// What Quick reads from the go command's own output and files: the script go build -x prints
// (the commands it ran), the export data of a package archive, and the build ID of a binary.
// Each reader refuses what it does not know: Quick then keeps no state and the next build is
// the go command's.

// tool is one command go build ran: the compiler or the linker.
type tool struct {
	dir  string   // where it ran; "" is the go command's own directory
	env  []string // what go set for it alone (GOROOT='' for the linker, GOOS when changed...)
	args []string // args[0] is the tool's path
}

// script is what a go build -x -work run did, as far as Quick needs it.
type script struct {
	work     string // $WORK, kept by -work
	compiles []tool // in the order go ran them: dependencies first
	link     *tool
}

// parseScript reads go build -x's output (with $WORK replaced back by its path). It knows the
// lines a build with a warm cache prints (mkdir, the import configurations, cd, compile,
// buildid, cp into the cache, link, mv) and refuses any other (asm, cgo, pack...).
func parseScript(out string) (*script, error) {
	s := &script{}
	dir := ""
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "":
		case strings.HasPrefix(l, "WORK="):
			s.work = strings.TrimPrefix(l, "WORK=")
		case s.work == "":
			return nil, fmt.Errorf("go build -x printed %q before WORK=", l)
		case strings.HasPrefix(l, "mkdir -p "):
		case strings.HasPrefix(l, "cat >") && strings.HasSuffix(l, " << 'EOF' # internal"):
			for i++; i < len(lines) && lines[i] != "EOF"; i++ { // the file is kept in $WORK
			}
			if i == len(lines) {
				return nil, errors.New("go build -x: a here-document without its EOF")
			}
		case strings.HasPrefix(l, "echo ") && strings.HasSuffix(l, " # internal"):
		case strings.HasPrefix(l, "go tool buildid -w ") && strings.HasSuffix(l, " # internal"):
		case strings.HasPrefix(l, "cp ") && strings.HasSuffix(l, " # internal"): // into GOCACHE
		case strings.HasPrefix(l, "cd "):
			dir = s.expand(strings.TrimPrefix(l, "cd "))
			if dir == "." {
				dir = ""
			}
		case strings.HasPrefix(l, "git ") || strings.HasPrefix(l, "hg ") || strings.HasPrefix(l, "fossil ") ||
			strings.HasPrefix(l, "bzr ") || strings.HasPrefix(l, "svn "):
			return nil, vcsStamped
		case strings.HasPrefix(l, "mv ") || strings.HasPrefix(l, "cp "): // the binary to -o
			if s.link == nil {
				return nil, fmt.Errorf("go build -x: %q before the link", l)
			}
		default:
			t, err := s.command(l)
			if err != nil {
				return nil, err
			}
			t.dir = dir
			switch filepath.Base(t.args[0]) {
			case "compile":
				s.compiles = append(s.compiles, t)
			case "link":
				if s.link != nil {
					return nil, errors.New("go build -x: two links")
				}
				s.link = &t
			default:
				return nil, fmt.Errorf("go build -x: a command Quick does not run: %.80s", l)
			}
		}
	}
	if s.link == nil {
		return nil, errors.New("go build -x: no link")
	}
	return s, nil
}

// expand puts $WORK's path back where go build -x printed "$WORK".
func (s *script) expand(v string) string { return strings.ReplaceAll(v, "$WORK", s.work) }

// command splits a command line as the go command prints it: NAME='v' or NAME="v" first (the
// environment it sets for this command), then words, each plain or a Go-quoted string (cmd/go's
// joinUnambiguously).
func (s *script) command(line string) (tool, error) {
	var t tool
	l := line
	for {
		kv, rest, ok := envWord(l)
		if !ok || !strings.HasPrefix(rest, " ") {
			break
		}
		t.env = append(t.env, s.expand(kv))
		l = rest[1:]
	}
	for l != "" {
		var word string
		if l[0] == '"' {
			q, err := strconv.QuotedPrefix(l)
			if err != nil {
				return t, fmt.Errorf("go build -x: cannot read %.80q: %v", line, err)
			}
			word, _ = strconv.Unquote(q)
			l = l[len(q):]
		} else {
			i := strings.IndexByte(l, ' ')
			if i < 0 {
				i = len(l)
			}
			word, l = l[:i], l[i:]
		}
		if l != "" && l[0] != ' ' {
			return t, fmt.Errorf("go build -x: cannot split %.80q into words", line)
		}
		l = strings.TrimPrefix(l, " ")
		t.args = append(t.args, s.expand(word))
	}
	if len(t.args) == 0 || !filepath.IsAbs(t.args[0]) {
		return t, fmt.Errorf("go build -x: not a tool's command: %.80s", line)
	}
	return t, nil
}

// envWord reads NAME='value' or NAME="value" at the start of l, returning "NAME=value" and the
// rest of l.
func envWord(l string) (string, string, bool) {
	name, rest, ok := strings.Cut(l, "=")
	if !ok || name == "" || strings.TrimLeft(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" || rest == "" {
		return "", "", false
	}
	switch rest[0] {
	case '\'':
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return "", "", false
		}
		return name + "=" + rest[1:1+end], rest[2+end:], true
	case '"':
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", "", false
		}
		v, _ := strconv.Unquote(q)
		return name + "=" + v, rest[len(q):], true
	}
	return "", "", false
}

// flag is the value of -name in args (as "-name value" or "-name=value").
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// exportData is what a package's importers read from its archive: the __.PKGDEF member,
// without its build id line (which holds the action ID, an input hash of cmd/go's, and its
// content ID, a hash of the whole archive: neither reaches an importer's object code).
func exportData(archive string) ([]byte, error) {
	f, err := os.ReadFile(archive)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(f, []byte("!<arch>\n")) {
		return nil, fmt.Errorf("%s: not an archive", archive)
	}
	f = f[len("!<arch>\n"):]
	for len(f) >= 60 {
		name := strings.TrimSpace(string(f[:16]))
		size, err := strconv.Atoi(strings.TrimSpace(string(f[48:58])))
		if err != nil || size < 0 || 60+size > len(f) {
			return nil, fmt.Errorf("%s: bad archive header", archive)
		}
		body := f[60 : 60+size]
		if name == "__.PKGDEF" {
			var kept []byte
			for line := range bytes.Lines(body) {
				if !bytes.HasPrefix(line, []byte("build id ")) {
					kept = append(kept, line...)
				}
			}
			return kept, nil
		}
		f = f[60+size+size%2:]
	}
	return nil, fmt.Errorf("%s: no __.PKGDEF", archive)
}

// stampBuildID does what go build does to a linked binary: it replaces the last part of id
// (wherever id occurs in the file) by a hash of the file in which every occurrence of id, and
// the GNU build ID note's hash (the linker derives it from id), read as zeros: cmd/go's
// buildid.FindAndHash and HashToString. ELF only (a Mach-O binary's signature would need
// signing again).
func stampBuildID(path, id string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	matches := indexAll(b, []byte(id))
	if len(matches) == 0 {
		return fmt.Errorf("%s: build ID %s not found", path, id)
	}
	// The bytes that hash as zeros, in order: the GNU build ID's hash (past the note's header
	// and "GNU\x00") and each occurrence of id.
	var zero [][2]int
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if s := ef.Section(".note.gnu.build-id"); s != nil && s.Size > 16 && s.Offset+s.Size <= uint64(len(b)) {
		zero = append(zero, [2]int{int(s.Offset) + 16, int(s.Offset + s.Size)})
	}
	for _, m := range matches {
		zero = append(zero, [2]int{m, m + len(id)})
	}
	slices.SortFunc(zero, func(a, b [2]int) int { return a[0] - b[0] })
	h, at := sha256.New(), 0
	for _, z := range zero {
		if z[0] < at {
			return fmt.Errorf("%s: the build ID overlaps the GNU build ID", path)
		}
		h.Write(b[at:z[0]])
		h.Write(make([]byte, z[1]-z[0]))
		at = z[1]
	}
	h.Write(b[at:])
	sum := h.Sum(nil)
	newID := id[:strings.LastIndex(id, "/")+1] + hashToString(sum[:])
	if len(newID) != len(id) {
		return fmt.Errorf("build ID %q: unexpected form", id)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	for _, m := range matches {
		if _, err := f.WriteAt([]byte(newID), int64(m)); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// indexAll is every offset of sep in b, not overlapping.
func indexAll(b, sep []byte) []int {
	var at []int
	for off := 0; ; {
		i := bytes.Index(b[off:], sep)
		if i < 0 {
			return at
		}
		at = append(at, off+i)
		off += i + len(sep)
	}
}

// hashToString is the go command's 20-character form of a hash: its first 15 bytes in
// URL-safe base64 (cmd/go's cache.HashToString).
func hashToString(h []byte) string { return base64.RawURLEncoding.EncodeToString(h[:15]) }
