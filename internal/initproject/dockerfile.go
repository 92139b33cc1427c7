package initproject

import (
	"encoding/json"
	"path"
	"strconv"
	"strings"
)

func isDockerfile(name string) bool {
	return name == "Dockerfile" || name == "Containerfile" || strings.HasPrefix(name, "Dockerfile.") || strings.HasSuffix(name, ".Dockerfile")
}

// dockerService is a main package a Dockerfile builds, and where its final image keeps it.
type dockerService struct {
	file       string // the Dockerfile, relative to the project
	context    string // its build context, relative to the project
	line       int    // of the go build
	main       string // ./dir relative to the project
	binary     string // in the final image; "" when not found
	binaryLine int
}

type stage struct {
	name    string
	workdir string
	builds  []goBuild     // go builds run in this stage
	all     []instruction // the stage's instructions after FROM
}

type goBuild struct {
	pkg, out string // as written; out resolved against the stage's workdir
	line     int
}

type instruction struct {
	cmd  string // upper case
	args string
	line int
}

// dockerfile reads the go builds of a Dockerfile's stages and follows each output to where the
// final stage copies it.
func (d *detector) dockerfile(p, rel string) error {
	b, ok := read(p)
	if !ok {
		return nil
	}
	context := path.Dir(rel)
	if s := d.skaffold; s != nil {
		for _, a := range s.artifacts {
			if a.Docker != nil && path.Join(a.Context, dockerfileName(a.Docker.Dockerfile)) == rel {
				context = a.Context
			}
		}
	}
	stages := parseDockerfile(string(b))
	if len(stages) == 0 {
		return nil
	}
	final := stages[len(stages)-1]
	for si, st := range stages {
		for _, gb := range st.builds {
			svc := dockerService{file: rel, context: context, line: gb.line}
			svc.main = d.mainOf(context, st.workdir, gb.pkg)
			if svc.main == "" {
				d.find(rel, gb.line, false, "go build %s: not a main package of this project (skipped)", gb.pkg)
				continue
			}
			if si == len(stages)-1 {
				svc.binary, svc.binaryLine = gb.out, gb.line
			} else {
				svc.binary, svc.binaryLine = copiedTo(final, stages, si, gb.out)
			}
			if svc.binary == "" {
				svc.binary, svc.binaryLine = entrypointBinary(final)
			}
			d.dockerfiles = append(d.dockerfiles, svc)
			d.find(rel, gb.line, false, "go build of %s", svc.main)
		}
	}
	return nil
}

func dockerfileName(s string) string {
	if s == "" {
		return "Dockerfile"
	}
	return s
}

// mainOf maps a go build's package argument, run in workdir inside the image, to the project:
// the context is assumed copied to the build stage's workdir (COPY . .), so ./cmd/x there is
// <context>/cmd/x here. An import path of this module maps through go.mod.
func (d *detector) mainOf(context, workdir, pkg string) string {
	var dir string
	switch {
	case pkg == "." || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../"):
		dir = path.Join(context, pkg)
	case path.IsAbs(pkg):
		rel := strings.TrimPrefix(pkg, path.Clean(workdir))
		if rel == pkg {
			return ""
		}
		dir = path.Join(context, "."+rel)
	default:
		r := d.module.relDir(pkg)
		if r == "" {
			return ""
		}
		dir = path.Clean(r)
	}
	if strings.HasPrefix(dir, "..") || !d.isMain(dir) {
		return ""
	}
	return dotSlash(dir)
}

// copiedTo follows out (built in stage si) to where the final stage's COPY --from puts it.
func copiedTo(final stage, stages []stage, si int, out string) (string, int) {
	for _, in := range final.copies() {
		from, srcs, dst, ok := parseCopy(in.args)
		if !ok || !refersTo(from, stages, si) {
			continue
		}
		for _, src := range srcs {
			src = resolve(stages[si].workdir, src)
			switch {
			case src == out:
				if strings.HasSuffix(dst, "/") || len(srcs) > 1 {
					return resolve(final.workdir, path.Join(dst, path.Base(out))), in.line
				}
				return resolve(final.workdir, dst), in.line
			case strings.HasPrefix(out, strings.TrimSuffix(src, "/")+"/"):
				return resolve(final.workdir, path.Join(dst, strings.TrimPrefix(out, strings.TrimSuffix(src, "/")+"/"))), in.line
			}
		}
	}
	return "", 0
}

// entrypointBinary is the final stage's ENTRYPOINT (or CMD) program when it is an absolute path.
func entrypointBinary(final stage) (string, int) {
	var in instruction
	for _, i := range final.instructions() {
		if i.cmd == "ENTRYPOINT" || (i.cmd == "CMD" && in.cmd != "ENTRYPOINT") {
			in = i
		}
	}
	words := execForm(in.args)
	if len(words) > 0 && path.IsAbs(words[0]) {
		return words[0], in.line
	}
	return "", 0
}

func refersTo(from string, stages []stage, si int) bool {
	if from == "" {
		return false
	}
	if n, err := strconv.Atoi(from); err == nil {
		return n == si
	}
	return strings.EqualFold(from, stages[si].name)
}

func resolve(workdir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join("/", workdir, p)
}

func (s stage) copies() []instruction {
	var out []instruction
	for _, i := range s.instructions() {
		if i.cmd == "COPY" {
			out = append(out, i)
		}
	}
	return out
}

func (s stage) instructions() []instruction { return s.all }

// parseDockerfile splits a Dockerfile into stages with their workdirs and go builds.
func parseDockerfile(src string) []stage {
	var stages []stage
	for _, in := range instructions(src) {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{workdir: "/"}
			for i := 0; i+1 < len(f); i++ {
				if strings.EqualFold(f[i], "AS") {
					st.name = f[i+1]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			continue // ARG before FROM
		}
		st := &stages[len(stages)-1]
		st.all = append(st.all, in)
		switch in.cmd {
		case "WORKDIR":
			st.workdir = resolve(st.workdir, strings.Trim(strings.TrimSpace(in.args), `"`))
		case "RUN":
			for _, gb := range goBuilds(in.args) {
				gb.line = in.line
				gb.out = resolve(st.workdir, gb.out)
				st.builds = append(st.builds, gb)
			}
		}
	}
	return stages
}

// instructions splits src into instructions, joining continued lines and dropping comments.
func instructions(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(t, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(t, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(t)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	return out
}

// flagsWithValue are go build's flags that take the next word as their value.
var flagsWithValue = map[string]bool{"-o": true, "-ldflags": true, "-gcflags": true, "-asmflags": true, "-tags": true, "-mod": true,
	"-modfile": true, "-p": true, "-pkgdir": true, "-toolexec": true, "-buildmode": true, "-compiler": true, "-installsuffix": true,
	"-overlay": true, "-pgo": true, "-gccgoflags": true, "-C": true, "-covermode": true, "-coverpkg": true, "-exec": true}

// goBuilds finds the go build commands in a RUN line (shell or exec form).
func goBuilds(run string) []goBuild {
	words := execForm(run)
	if len(words) >= 3 && words[1] == "-c" && strings.HasPrefix(strings.TrimSpace(run), "[") {
		words = shellWords(words[2]) // ["/bin/sh", "-c", "go build ..."]
	}
	var out []goBuild
	for i := 0; i+1 < len(words); i++ {
		if words[i] != "go" || words[i+1] != "build" {
			continue
		}
		gb := goBuild{}
		var pkgs []string
		j := i + 2
		for ; j < len(words); j++ {
			w := words[j]
			if isShellOp(w) {
				break
			}
			if strings.HasPrefix(w, "-") {
				name, val, hasVal := strings.Cut(strings.Replace(w, "--", "-", 1), "=")
				if flagsWithValue[name] && !hasVal && j+1 < len(words) {
					j++
					val = words[j]
				}
				if name == "-o" {
					gb.out = val
				}
				continue
			}
			pkgs = append(pkgs, w)
		}
		i = j
		if len(pkgs) == 0 {
			pkgs = []string{"."}
		}
		if len(pkgs) > 1 || strings.HasSuffix(pkgs[0], "/...") {
			continue // several packages: no single binary
		}
		gb.pkg = pkgs[0]
		if gb.out == "" || strings.HasSuffix(gb.out, "/") {
			name := path.Base(gb.pkg)
			if gb.pkg == "." {
				name = "" // the module's or directory's name: unknown here
			}
			if name == "" {
				continue
			}
			gb.out = path.Join(gb.out, name)
		}
		out = append(out, gb)
	}
	return out
}

func isShellOp(w string) bool {
	switch w {
	case "&&", "||", ";", "|", "&", ")":
		return true
	}
	return false
}

// execForm reads a JSON array instruction argument (["go", "build"]), or returns nil.
func execForm(s string) []string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		if s == "" {
			return nil
		}
		return shellWords(s)
	}
	var words []string
	if json.Unmarshal([]byte(s), &words) != nil {
		return nil
	}
	return words
}

// shellWords splits a shell command into words: quotes removed, ; && || | split off.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
		case r == ' ' || r == '\t':
			flush()
		case r == ';' || r == '(' || r == ')':
			flush()
			out = append(out, string(r))
		case (r == '&' || r == '|') && i+1 < len(rs) && rs[i+1] == r:
			flush()
			out = append(out, string(r)+string(r))
			i++
		case r == '|' || r == '&':
			flush()
			out = append(out, string(r))
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out
}

// parseCopy reads COPY [--from=X] [--chown=...] SRC... DST (shell or JSON form).
func parseCopy(args string) (from string, srcs []string, dst string, ok bool) {
	rest := strings.TrimSpace(args)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		if v, isFrom := strings.CutPrefix(flag, "--from="); isFrom {
			from = v
		}
		rest = strings.TrimSpace(after)
	}
	words := execForm(rest)
	if len(words) < 2 {
		return "", nil, "", false
	}
	return from, words[:len(words)-1], words[len(words)-1], true
}
