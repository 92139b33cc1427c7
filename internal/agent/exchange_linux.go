package agent

import (
	"errors"
	"runtime"
	"syscall"
	"unsafe"
)

// exchangeFiles swaps the files at a and b atomically (renameat2 with RENAME_EXCHANGE):
// afterwards b names what a named and a what b named. It replaces a file as atomically as a
// rename over it, without a rename's cost on ext4: renaming over an existing file makes ext4
// (auto_da_alloc) allocate and start writing out the new file's delayed blocks in the call, 1.5
// ms for a 30 MB binary, and a small file renamed over another just after waits some 12 ms on
// the journal that write keeps busy (measured on the project's machine). An exchange does
// neither, and a binary replaced again within the kernel's writeback delay is never written to
// the disk at all. errors.ErrUnsupported where this architecture's system call number is not
// known here; otherwise the call's error (ENOSYS, EINVAL where the filesystem cannot exchange,
// ENOENT): the caller falls back to a rename.
func exchangeFiles(a, b string) error {
	nr, ok := sysRenameat2[runtime.GOARCH]
	if !ok {
		return errors.ErrUnsupported
	}
	pa, err := syscall.BytePtrFromString(a)
	if err != nil {
		return err
	}
	pb, err := syscall.BytePtrFromString(b)
	if err != nil {
		return err
	}
	const (
		atFDCWD        = -100
		renameExchange = 2
	)
	fd := atFDCWD
	_, _, errno := syscall.Syscall6(nr, uintptr(fd), uintptr(unsafe.Pointer(pa)), uintptr(fd), uintptr(unsafe.Pointer(pb)), renameExchange, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// sysRenameat2 is renameat2's number on the architectures where it is known for certain (the
// standard library's syscall package does not name it on amd64); elsewhere the agent renames.
var sysRenameat2 = map[string]uintptr{"amd64": 316, "arm64": 276, "riscv64": 276, "loong64": 276}
