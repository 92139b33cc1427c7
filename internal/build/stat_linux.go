package build

import (
	"io/fs"
	"syscall"
)

// changeTime is the inode's change time, which every write, rename or chmod moves and no
// program can set back (as it can the modification time: cp -p, tar, rsync -t).
func changeTime(fi fs.FileInfo) (ns int64, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano(), st.Ino
	}
	return 0, 0
}
