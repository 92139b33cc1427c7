package initproject

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// decide turns what the walk saw into services and one source of manifests.
func (d *detector) decide() {
	d.services()
	d.manifests()
}

func (d *detector) services() {
	p := &d.project
	for _, ip := range d.koOrder {
		s := Service{Image: "ko://" + ip, Notes: []string{"from " + d.koRefs[ip]}}
		if dir := d.module.relDir(ip); dir != "" && !d.isMain(dir) {
			s.Notes = append(s.Notes, "CHECK: "+dir+" is not a main package of this module")
			d.find(d.koRefs[ip], 0, true, "ko://%s: %s holds no main package", ip, dir)
		}
		p.Services = append(p.Services, s)
	}
	claimed := map[int]bool{} // dockerfiles a skaffold artifact names
	if sk := d.skaffold; sk != nil {
		for _, a := range sk.artifacts {
			switch {
			case a.Ko != nil || strings.HasPrefix(a.Image, "ko://"):
				d.skaffoldKo(a)
			case a.Docker != nil || a.Image != "":
				file := path.Join(a.Context, dockerfileName(dockerfileOf(a)))
				found := false
				for i, ds := range d.dockerfiles {
					if ds.file != file || claimed[i] {
						continue
					}
					claimed[i], found = true, true
					s := d.dockerService(ds, a.Image, "from "+sk.file+" (artifact "+a.Image+")")
					p.Services = append(p.Services, s)
					break
				}
				if !found {
					d.find(sk.file, 0, true, "artifact %s: %s has no go build of a main package of this project: add its service by hand", a.Image, file)
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, s := range p.Services {
		seen[s.Main] = s.Main != ""
	}
	for i, ds := range d.dockerfiles {
		if claimed[i] || seen[ds.main] {
			continue
		}
		seen[ds.main] = true
		p.Services = append(p.Services, d.dockerService(ds, "", ""))
	}
}

func dockerfileOf(a skaffoldArtifact) string {
	if a.Docker == nil {
		return ""
	}
	return a.Docker.Dockerfile
}

// skaffoldKo adds a service for a skaffold artifact built with ko: hotpod builds ko:// images,
// so the manifests must name it that way.
func (d *detector) skaffoldKo(a skaffoldArtifact) {
	ip, ok := strings.CutPrefix(a.Image, "ko://")
	if !ok {
		dir := a.Context
		if a.Ko != nil {
			dir = path.Join(a.Context, a.Ko.Dir, a.Ko.Main)
		}
		ip = d.module.importPath(dir)
		if ip == "" {
			d.find(d.skaffold.file, 0, true, "artifact %s (ko): no go.mod at the project's root to name its import path: add the service by hand", a.Image)
			return
		}
	}
	if _, dup := d.koRefs[ip]; dup {
		return
	}
	note := "from " + d.skaffold.file + " (ko artifact " + a.Image + ")"
	s := Service{Image: "ko://" + ip, Notes: []string{note}}
	if !strings.HasPrefix(a.Image, "ko://") {
		s.Notes = append(s.Notes, "CHECK: hotpod builds ko:// references: write image: ko://"+ip+" in the manifests where they name "+a.Image)
		d.find(d.skaffold.file, 0, true, "artifact %s (ko) is ko://%s: the manifests must name it so for hotpod", a.Image, ip)
	}
	d.project.Services = append(d.project.Services, s)
}

// dockerService is the service for a main package a Dockerfile builds. image is the name the
// manifests use when known (from skaffold); otherwise it is guessed from the manifests' images.
func (d *detector) dockerService(ds dockerService, image, note string) Service {
	name := path.Base(ds.main)
	if ds.main == "." {
		name = path.Base(d.module.path)
	}
	if ds.binary != "" {
		name = path.Base(ds.binary)
	}
	s := Service{Main: ds.main, Binary: ds.binary}
	if note != "" {
		s.Notes = append(s.Notes, note)
	}
	s.Notes = append(s.Notes, fmt.Sprintf("main from %s:%d (go build)", ds.file, ds.line))
	if ds.binary != "" {
		s.Notes = append(s.Notes, fmt.Sprintf("binary from %s:%d", ds.file, ds.binaryLine))
	} else {
		s.Binary = "/usr/local/bin/" + name
		s.Notes = append(s.Notes, "CHECK binary: "+ds.file+" does not say where the final image keeps it")
		d.find(ds.file, ds.line, true, "binary of %s: not copied to the final image by name; guessed %s", ds.main, s.Binary)
	}
	if image != "" {
		s.Image = repository(image)
		return s
	}
	if img, where := d.imageNamed(name, path.Base(ds.main)); img != "" {
		s.Image = img
		s.Notes = append(s.Notes, "CHECK image: the manifests' image named like the binary, in "+where)
		d.find(ds.file, ds.line, true, "image of %s: %s (named like its binary, in %s)", ds.main, img, where)
		return s
	}
	s.Image = "registry.example.com/CHANGE-ME/" + name
	s.Notes = append(s.Notes, "CHECK image: write how your manifests name the image "+ds.file+" builds")
	d.find(ds.file, ds.line, true, "image of %s: no image in the manifests is named %s; wrote a placeholder to replace", ds.main, name)
	return s
}

// imageNamed finds a non-ko image in the manifests whose repository ends in one of names.
func (d *detector) imageNamed(names ...string) (string, string) {
	repos := make([]string, 0, len(d.images))
	for r := range d.images {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, n := range names {
		for _, r := range repos {
			if path.Base(r) == n {
				return r, d.images[r]
			}
		}
	}
	return "", ""
}

func (d *detector) manifests() {
	m := &d.project.Manifests
	var others []string
	if sk := d.skaffold; sk != nil {
		switch {
		case len(sk.helm) > 0:
			r := sk.helm[0]
			m.Helm = &Helm{Chart: r.ChartPath, Values: r.ValuesFiles, Set: r.SetValues, Release: r.Name, Namespace: r.Namespace}
			m.Note = "from " + sk.file + " (helm release " + r.Name + ")"
		case len(sk.kustomize) > 0:
			m.Kustomize, m.Note = sk.kustomize[0], "from "+sk.file+" (kustomize)"
		case len(sk.files) > 0:
			m.Files, m.Note = sk.files, "from "+sk.file+" (kubectl)"
		}
		if m.Note != "" {
			return
		}
	}
	charts := d.charts
	sort.SliceStable(charts, func(i, j int) bool { return depth(charts[i].dir) < depth(charts[j].dir) })
	kust := preferDev(d.kustomizations)
	files := d.filesDirs()
	switch {
	case len(charts) > 0:
		c := charts[0]
		m.Helm = &Helm{Chart: c.dir, Values: c.values, Release: c.name}
		m.Note = "the Helm chart " + c.dir
		if len(c.values) > 0 {
			m.Note += "; CHECK values: " + strings.Join(c.values, ", ") + " looked meant for development"
			d.find(c.dir, 0, true, "values for development: %s", strings.Join(c.values, ", "))
		}
		for _, o := range charts[1:] {
			others = append(others, "chart "+o.dir)
		}
		for _, k := range kust {
			others = append(others, "kustomization "+k)
		}
	case len(kust) > 0:
		m.Kustomize, m.Note = kust[0], "the kustomization "+kust[0]
		if len(kust) > 1 {
			m.Note = "CHECK: the kustomization " + kust[0] + " of several"
			d.find(kust[0], 0, true, "the kustomization to use, of %d", len(kust))
		}
		for _, k := range kust[1:] {
			others = append(others, "kustomization "+k)
		}
	case len(files) > 0:
		m.Files, m.Note = files, "the directories with Kubernetes workloads"
	default:
		d.find("", 0, false, "no manifests: no skaffold deployer, Helm chart, kustomization or YAML with Kubernetes workloads")
	}
	if len(others) > 0 {
		d.find("", 0, true, "manifests: %s; also found %s: change manifests: if that is what you deploy", m.source(), strings.Join(others, ", "))
	}
}

func (m Manifests) source() string {
	switch {
	case m.Helm != nil:
		return "chart " + m.Helm.Chart
	case m.Kustomize != "":
		return "kustomization " + m.Kustomize
	}
	return "files " + strings.Join(m.Files, ", ")
}

// filesDirs are the directories with workloads that no kustomization already covers.
func (d *detector) filesDirs() []string {
	var out []string
	for _, dir := range d.manifestDirs {
		covered := false
		for _, k := range d.kustomizations {
			if dir == k {
				covered = true
			}
		}
		if !covered {
			out = append(out, dir)
		}
	}
	return out
}

// preferDev orders kustomizations: one whose path says dev or local first, then by depth (an
// overlay before its base would need more than a path to tell; shallower first otherwise).
func preferDev(ks []string) []string {
	out := append([]string(nil), ks...)
	score := func(k string) int {
		for _, part := range strings.Split(k, "/") {
			switch part {
			case "dev", "development", "local":
				return 0
			}
		}
		return 1
	}
	sort.SliceStable(out, func(i, j int) bool {
		if si, sj := score(out[i]), score(out[j]); si != sj {
			return si < sj
		}
		return depth(out[i]) < depth(out[j])
	})
	return out
}

func depth(p string) int {
	if p == "." {
		return 0
	}
	return strings.Count(p, "/") + 1
}
