// debuggee is the app the agent's debugger tests run under Delve. Its version is set with
// -ldflags -X main.version; it is built as hotpod --debug builds (-N -l, DWARF, full paths).
//
//	PORT   serve on 127.0.0.1:PORT: GET / → "hello <version>" (through handle, where the tests
//	       set their breakpoints), GET /exit → exit with code 3
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

var version = "dev"

func main() {
	http.HandleFunc("/", handle)
	http.HandleFunc("/exit", func(http.ResponseWriter, *http.Request) {
		fmt.Println("exiting", version)
		os.Exit(3)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("started", version)
	_ = http.Serve(ln, nil)
}

func handle(w http.ResponseWriter, r *http.Request) {
	answer := "hello " + version // BREAK
	fmt.Fprint(w, answer)
}
