// child is the app the agent tests supervise. Its version is set with -ldflags -X main.version.
//
//	PORT          serve GET / → version on 127.0.0.1:PORT
//	CRASH=N       print "boom" and exit with code N at once
//	EXIT_ON_TERM  exit code after SIGTERM (default 0)
//	ORPHAN=1      start a grandchild that outlives this process by 200 ms, then exit 0: the
//	              grandchild is reparented to PID 1 (the agent), which must reap it
//	SLEEPY=1      (the grandchild) sleep 200 ms and exit
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

var version = "dev"

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	if os.Getenv("SLEEPY") == "1" {
		time.Sleep(200 * time.Millisecond)
		return
	}
	fmt.Println("started", version)
	if os.Getenv("ORPHAN") == "1" {
		p, err := os.StartProcess("/proc/self/exe", []string{"sleepy"}, &os.ProcAttr{Env: []string{"SLEEPY=1"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("orphaned", p.Pid)
		os.Exit(0)
	}
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
