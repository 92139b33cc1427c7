module github.com/hotpod/hotpod

go 1.26.8

require (
	github.com/fsnotify/fsnotify v1.9.0
	github.com/klauspost/compress v1.18.0
)

require golang.org/x/sys v0.13.0 // indirect
