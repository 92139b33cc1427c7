// Package watch turns file-system events on the sources of a main package into batches of
// changes: editor temp files are ignored, bursts (an editor's save, a git checkout) are debounced
// into one batch, and each batch carries the time of its first event, where edit→ready starts.
package watch

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Batch is a set of changes that belong to one edit.
type Batch struct {
	First time.Time // the first event of the edit
	Paths []string
}

// Set is what to watch: whole source directories (where .go and assembly files matter),
// single files (go.mod, go.sum, embedded files), and trees where every file matters, in every
// subdirectory (ko's kodata/).
type Set struct {
	Dirs  []string
	Files []string
	Trees []string
}

// Watcher watches a Set.
type Watcher struct {
	fsw      *fsnotify.Watcher
	quiet    time.Duration
	mu       sync.Mutex
	srcDirs  map[string]bool
	files    map[string]bool
	trees    []string
	watching map[string]bool
	out      chan Batch
	errs     chan error
}

// New watches set. A batch is emitted once no relevant event came for quiet.
func New(set Set, quiet time.Duration) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &Watcher{fsw: fsw, quiet: quiet, watching: map[string]bool{}, out: make(chan Batch, 1), errs: make(chan error, 1)}
	if err := w.Update(set); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

// Update replaces the watched set (after a build found new local imports or embeds).
func (w *Watcher) Update(set Set) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.srcDirs, w.files = map[string]bool{}, map[string]bool{}
	want := map[string]bool{}
	for _, d := range set.Dirs {
		d = filepath.Clean(d)
		w.srcDirs[d] = true
		want[d] = true
	}
	for _, f := range set.Files {
		f = filepath.Clean(f)
		w.files[f] = true
		// Watch the directory, not the file: editors replace files by renaming over them.
		want[filepath.Dir(f)] = true
	}
	w.trees = nil
	for _, t := range set.Trees {
		t = filepath.Clean(t)
		w.trees = append(w.trees, t)
		err := filepath.WalkDir(t, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				want[p] = true
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("watch %s: %w", t, err)
		}
	}
	for d := range want {
		if !w.watching[d] {
			if err := w.fsw.Add(d); err != nil {
				return fmt.Errorf("watch %s: %w", d, err)
			}
			w.watching[d] = true
		}
	}
	for d := range w.watching {
		if !want[d] {
			_ = w.fsw.Remove(d)
			delete(w.watching, d)
		}
	}
	return nil
}

// Run delivers batches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	defer w.fsw.Close()
	var (
		pending Batch
		timer   *time.Timer
		fire    <-chan time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-w.fsw.Errors:
			select {
			case w.errs <- err:
			default:
			}
		case ev := <-w.fsw.Events:
			if !w.relevant(ev) {
				continue
			}
			if ev.Op&fsnotify.Create != 0 {
				w.watchNewDir(ev.Name)
			}
			if pending.First.IsZero() {
				pending.First = time.Now()
			}
			if !slices.Contains(pending.Paths, ev.Name) {
				pending.Paths = append(pending.Paths, ev.Name)
			}
			if timer == nil {
				timer = time.NewTimer(w.quiet)
			} else {
				timer.Reset(w.quiet)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			select {
			case w.out <- pending:
				pending = Batch{}
			default:
				// The consumer is busy with the previous batch: keep collecting; it will
				// take this one when it is ready. Retry soon.
				timer.Reset(w.quiet)
				fire = timer.C
			}
		}
	}
}

// Batches delivers the batches Run produces.
func (w *Watcher) Batches() <-chan Batch { return w.out }

// Errors reports watcher errors (an overflowed event queue, say).
func (w *Watcher) Errors() <-chan error { return w.errs }

func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	base := filepath.Base(name)
	if Ignored(base) {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.files[name] || w.inTree(name) {
		return true
	}
	if !w.srcDirs[filepath.Dir(name)] {
		return false
	}
	switch filepath.Ext(base) {
	case ".go", ".s", ".syso":
		return true
	}
	return base == "go.mod" || base == "go.sum"
}

// inTree reports whether name lies under one of the trees; w.mu is held.
func (w *Watcher) inTree(name string) bool {
	for _, t := range w.trees {
		if rel, err := filepath.Rel(t, name); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			return true
		}
	}
	return false
}

// watchNewDir starts watching a directory made inside a tree (and what is already in it).
func (w *Watcher) watchNewDir(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.inTree(name) {
		return
	}
	_ = filepath.WalkDir(name, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && !w.watching[p] {
			if w.fsw.Add(p) == nil {
				w.watching[p] = true
			}
		}
		return nil
	})
}

// Ignored reports whether base names an editor's temporary or backup file.
func Ignored(base string) bool {
	switch {
	case strings.HasPrefix(base, ".#"), // emacs lock
		strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"), // emacs autosave
		strings.HasSuffix(base, "~"),                                 // backups
		strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"), strings.HasSuffix(base, ".swo"),
		base == "4913",                                                                   // vim's write test
		strings.HasSuffix(base, "___jb_tmp___"), strings.HasSuffix(base, "___jb_old___"), // JetBrains
		strings.HasSuffix(base, ".tmp"),
		strings.HasPrefix(base, ".goutputstream-"):
		return true
	}
	return false
}
