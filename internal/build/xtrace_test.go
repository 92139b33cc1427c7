package build

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A script as go build -x -work prints it for an edit of main with a warm cache (trimmed), in a
// directory with a space in its name.
const sampleScript = `WORK=/tmp/go-build1
mkdir -p $WORK/b001/
cat >/tmp/go-build1/b001/importcfg << 'EOF' # internal
# import config
packagefile fmt=/c/1b-d
EOF
cd /src/my app
/go/pkg/tool/linux_amd64/compile -o $WORK/b001/_pkg_.a -trimpath "/src/my app=>example.com/hello;$WORK/b001=>" -p main -lang=go1.24 -complete -buildid A/A -goversion go1.26.8 -c=2 -nolocalimports -importcfg $WORK/b001/importcfg -pack ./main.go "./a b.go"
go tool buildid -w $WORK/b001/_pkg_.a # internal
cp $WORK/b001/_pkg_.a /c/4f-d # internal
cat >/tmp/go-build1/b001/importcfg.link << 'EOF' # internal
packagefile example.com/hello=/tmp/go-build1/b001/_pkg_.a
modinfo "x"
EOF
mkdir -p $WORK/b001/exe/
cd .
GOROOT='' GOAMD64="v3" /go/pkg/tool/linux_amd64/link -o $WORK/b001/exe/a.out -importcfg $WORK/b001/importcfg.link -buildmode=exe -buildid=L/A/C/L -s -w -extld=gcc $WORK/b001/_pkg_.a
go tool buildid -w $WORK/b001/exe/a.out # internal
mv $WORK/b001/exe/a.out app
`

func TestParseScript(t *testing.T) {
	s, err := parseScript(sampleScript)
	if err != nil {
		t.Fatal(err)
	}
	if s.work != "/tmp/go-build1" || len(s.compiles) != 1 || s.link == nil {
		t.Fatalf("work %q, %d compiles, link %v", s.work, len(s.compiles), s.link)
	}
	c := s.compiles[0]
	if c.dir != "/src/my app" || len(c.env) != 0 {
		t.Errorf("compile in %q with %q", c.dir, c.env)
	}
	want := []string{"/go/pkg/tool/linux_amd64/compile", "-o", "/tmp/go-build1/b001/_pkg_.a", "-trimpath", "/src/my app=>example.com/hello;/tmp/go-build1/b001=>"}
	if !slices.Equal(c.args[:5], want) || !slices.Equal(c.args[len(c.args)-2:], []string{"./main.go", "./a b.go"}) {
		t.Errorf("compile %q", c.args)
	}
	p, ok := compiledPkg(c)
	if !ok || !p.main || !slices.Equal(p.files, []string{"/src/my app/main.go", "/src/my app/a b.go"}) {
		t.Errorf("compiled package %+v, %v", p, ok)
	}
	if s.link.dir != "" || !slices.Equal(s.link.env, []string{"GOROOT=", "GOAMD64=v3"}) {
		t.Errorf("link in %q with %q", s.link.dir, s.link.env)
	}
	if id, _ := flag(s.link.args, "-buildid"); id != "L/A/C/L" {
		t.Errorf("link build ID %q", id)
	}

	for _, bad := range []struct{ name, line, want string }{
		{"an assembler", "/go/pkg/tool/linux_amd64/asm -p x -o $WORK/b002/a.o ./a.s", "a command Quick does not run"},
		{"a shell command", "rm -r $WORK/b001/", "not a tool's command"},
		{"a broken quote", `/go/pkg/tool/linux_amd64/compile "-o`, "cannot read"},
		{"version control", "git status --porcelain", vcsStamped.why},
	} {
		script := strings.Replace(sampleScript, "mkdir -p $WORK/b001/exe/\n", bad.line+"\n", 1)
		_, err := parseScript(script)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.name, err, bad.want)
		}
		if bad.name == "version control" && !errors.As(err, new(offError)) {
			t.Errorf("version control: %v is not an offError", err)
		}
	}
	if _, err := parseScript(sampleScript[:strings.Index(sampleScript, "mkdir -p $WORK/b001/exe/")]); err == nil {
		t.Error("a script without a link parsed")
	}
}

// FuzzParseScript: whatever the go command prints, parseScript returns a script Quick can use
// (its $WORK, a link, each command with a tool's path) or an error; it never panics.
func FuzzParseScript(f *testing.F) {
	f.Add(sampleScript)
	f.Add(strings.Replace(sampleScript, "mkdir -p $WORK/b001/exe/\n", "git status --porcelain\n", 1))
	f.Add("WORK=/tmp/w\ncat >/tmp/w/x << 'EOF' # internal\n")
	f.Fuzz(func(t *testing.T, out string) {
		s, err := parseScript(out)
		if err != nil {
			return
		}
		if s.work == "" || s.link == nil || len(s.link.args) == 0 {
			t.Fatalf("parsed without $WORK or a link: %+v", s)
		}
		for _, c := range s.compiles {
			if len(c.args) == 0 {
				t.Fatalf("a compile without a command: %+v", s)
			}
			compiledPkg(c)
		}
	})
}
