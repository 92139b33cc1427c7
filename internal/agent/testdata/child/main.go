// child is the app the agent tests supervise. Its version is set with -ldflags -X main.version.
//
//	PORT          serve GET / → version on 127.0.0.1:PORT
//	CRASH=N       print "boom" and exit with code N at once
//	EXIT_ON_TERM  exit code after SIGTERM (default 0)
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

var version = "dev"

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	fmt.Println("started", version)
	if c := os.Getenv("CRASH"); c != "" {
		n, _ := strconv.Atoi(c)
		fmt.Fprintln(os.Stderr, "boom")
		os.Exit(n)
	}
	if p := os.Getenv("PORT"); p != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, version) }))
	}
	for sig := range sigs {
		fmt.Println("got", sig)
		if sig == syscall.SIGHUP {
			continue
		}
		code, _ := strconv.Atoi(os.Getenv("EXIT_ON_TERM"))
		os.Exit(code)
	}
}
