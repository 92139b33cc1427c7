package dlvbin_test

import "testing/fstest"

func fstestMap(mod string) fstest.MapFS {
	return fstest.MapFS{"go.mod": {Data: []byte(mod)}, "go.sum": {Data: nil}}
}
